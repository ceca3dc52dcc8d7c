using System.Runtime.InteropServices;
using UmlMicro.Contracts.Linux;
using UmlMicro.Supervisor.Guest;
using UmlMicro.Supervisor.Ptrace;
using static UmlMicro.Supervisor.Native.Interop;

namespace UmlMicro.Supervisor.Tracing;

/// <summary>
/// The virtual CPUs on the tracer thread: every resume goes through here (a thread the scheduler wants
/// stopped is parked instead), and the ticker gives the scheduler its clock.
/// <para>
/// The tracer thread sleeps in waitpid, and every ptrace request must come from it, so the tick must arrive
/// as a wait event: the ticker is a small traced child (<c>umlmicro-launch --tick</c>) that stops itself
/// every half quantum. Its stop is the tick; the tracer resumes it only while the vCPUs are contended
/// (<see cref="Scheduling.VcpuScheduler.NeedsTick"/>) or the host placement must watch several processes, so an
/// uncontended guest — every single-threaded one with the default CPU count — never wakes the tracer for it.
/// A tick that decides nothing while no thread waits doubles the period for the next (up to
/// <see cref="MaxTickShift"/> doublings): a guest whose extra threads are blocked in the host, or whose
/// processes are idle, costs ever fewer ticks; a thread that starts waiting for a vCPU cuts a long period short. A signal that interrupts waitpid would also
/// do, but the .NET runtime installs its handlers with SA_RESTART and a managed handler cannot run in a
/// signal context safely; polling with WNOHANG would cost every stop a syscall.
/// </para>
/// </summary>
internal sealed unsafe partial class TracerThread
{
    private int _tickerPid;
    private bool _ticking;

    /// <summary>The next tick comes after the period doubled this many times; 0 while anything happens.</summary>
    private int _tickShift;

    /// <summary>At most 16 periods (80 ms with the default quantum) between ticks that find nothing to do.</summary>
    private const int MaxTickShift = 4;

    /// <summary>The signal that tells the ticker its next period (SIGRTMIN + shift, see launcher.c's tick()).</summary>
    private const int TickSignal = 34;

    /// <summary>Resumes after a stop that is not a syscall stop, the way the task was running before it.</summary>
    private void Resume(GuestTask task, int signal = 0) => Continue(task, task.ResumeRequest, signal);

    /// <summary>Resumes with <paramref name="request"/>, which also becomes how it resumes after other stops.</summary>
    private void ResumeWith(GuestTask task, long request)
    {
        task.ResumeRequest = request;
        Continue(task, request, 0);
    }

    /// <summary>The one place a guest task is resumed from its stops: unless the scheduler holds it back.</summary>
    private void Continue(GuestTask task, long request, int signal)
    {
        if (task.Vcpu.Hold != Scheduling.HoldReason.None) _k.Vcpus.Park(task.Vcpu, request, signal);
        else PtraceOps.Resume(task.HostTid, request, signal);
    }

    /// <summary>After every event: ticks are needed only while the vCPUs are contended; a thread that waits for a vCPU
    /// must not wait out a long period.</summary>
    private void KeepTicking()
    {
        if (_ticking)
        {
            if (_tickShift > 0 && _k.Vcpus.Waiting > 0)
            {
                _tickShift = 0;
                kill(_tickerPid, TickSignal); // cuts its sleep short: it stops, a tick, at once
            }
            return;
        }
        if (!NeedsTick) return;
        if (_tickerPid == 0) _tickerPid = StartTicker();
        _tickShift = 0;
        if (_tickerPid > 0 && PtraceOps.Resume(_tickerPid, PtraceOps.PTRACE_CONT, TickSignal)) _ticking = true;
    }

    /// <summary>A stop of the ticker: a tick. It goes on ticking only while the scheduler needs it.</summary>
    private void Ticked(int status)
    {
        if (!WIFSTOPPED(status))
        {
            _tickerPid = 0; // killed from outside: the next contention starts a new one
            _ticking = false;
            return;
        }
        if (WSTOPSIG(status) == TickSignal)
        {
            // The hurry of KeepTicking, stopped on its way in: delivered, it cuts the sleep short, and the stop that
            // follows at once is the tick.
            PtraceOps.Resume(_tickerPid, PtraceOps.PTRACE_CONT, TickSignal);
            return;
        }
        // Sched's decision comes back through the doorbell (one the doorbell missed is taken here).
        if (_k.Vcpus.Policy is not null && _doorbell is null && _k.Vcpus.Waiting > 0) StartDoorbell();
        _k.Vcpus.TakeDecision();
        bool decided = _k.Vcpus.NeedsTick && _k.Vcpus.Tick();
        if (_k.HostCpus.NeedsTick) decided |= _k.HostCpus.Tick(_k.Tasks.Snapshot());
        _tickShift = decided ? 0 : Math.Min(_tickShift + 1, MaxTickShift);
        _ticking = NeedsTick && PtraceOps.Resume(_tickerPid, PtraceOps.PTRACE_CONT, TickSignal + _tickShift);
    }

    /// <summary>The vCPUs are contended, or the guest has processes enough to need more than one host CPU.</summary>
    private bool NeedsTick => _k.Vcpus.NeedsTick || _k.HostCpus.NeedsTick;

    /// <summary>Spawns the ticker, seizes it while it stops itself, and leaves it stopped (returns -1 if it cannot start).</summary>
    private int StartTicker()
    {
        long us = Math.Max(1000, (long)_k.Vcpus.TickPeriod.TotalMicroseconds);
        int pid = StartHelperChild([launcher, "--tick", us.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        if (pid > 0) kill(pid, Signals.SIGCONT); // out of its group-stop; its first traced stop is the first tick
        return pid;
    }

    /// <summary>
    /// Spawns a helper mode of the launcher (the ticker, the doorbell) from this thread, so that it is this thread's
    /// child, and seizes it while it stops itself; -1 (and nothing left) if it cannot. It never outlives the tracer.
    /// </summary>
    private int StartHelperChild(string[] args)
    {
        if (Native.Interop.Spawn(args, [], out int pid) != 0) return -1;
        int status;
        if (waitpid(pid, &status, WUNTRACED | __WNOTHREAD) == pid && WIFSTOPPED(status) && PtraceOps.Seize(pid, PtraceOps.O_EXITKILL))
            return pid;
        kill(pid, Signals.SIGKILL);
        waitpid(pid, &status, __WNOTHREAD);
        return -1;
    }

    private void StopTicker()
    {
        if (_tickerPid <= 0) return;
        int status;
        kill(_tickerPid, Signals.SIGKILL);
        while (waitpid(_tickerPid, &status, __WALL | __WNOTHREAD) < 0 && LastErrno == EINTR) { }
        _tickerPid = 0;
        _ticking = false;
    }

    /// <summary>
    /// A signal about to be delivered names its sender by host pid (SIGCHLD's child, kill's and sigqueue's
    /// sender): the guest must see the virtual pid, or 0 for a sender outside the guest, as in a pid namespace.
    /// </summary>
    private void TranslateSigInfo(GuestTask task, int sig)
    {
        Span<byte> info = stackalloc byte[128];
        if (!PtraceOps.GetSigInfo(task.HostTid, info)) return;
        int code = MemoryMarshal.Read<int>(info[8..]);
        // si_pid sits at offset 16 for SIGCHLD's CLD_* codes (> 0) and for the codes whose si_pid the host kernel
        // fills in: SI_USER (0, kill), SI_TKILL (-6, tkill/tgkill) and SI_MESGQ (-3, mq_notify). SI_QUEUE (-1) carries
        // the siginfo its sender wrote (glibc's sigqueue puts getpid() there: a guest pid already); other codes (a
        // fault's si_addr, a timer's id) use those bytes otherwise.
        bool hasPid = code is 0 or -6 or -3 || (sig == Signals.SIGCHLD && code > 0);
        if (!hasPid) return;
        int hostPid = MemoryMarshal.Read<int>(info[16..]);
        if (hostPid <= 0) return;
        int vpid = _k.Pids.TryVirtualOfNs(hostPid, out int v) ? v : 0; // the host wrote it as the guest's namespace sees it
        if (vpid == hostPid) return;
        MemoryMarshal.Write(info[16..], in vpid);
        PtraceOps.SetSigInfo(task.HostTid, info);
    }
}
