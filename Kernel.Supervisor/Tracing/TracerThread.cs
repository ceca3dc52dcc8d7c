using System.Runtime.InteropServices;
using UmlMicro.Contracts.Linux;
using UmlMicro.Supervisor.Guest;
using UmlMicro.Supervisor.Native;
using UmlMicro.Supervisor.Ptrace;
using UmlMicro.Supervisor.Syscalls;
using static UmlMicro.Supervisor.Native.Interop;

namespace UmlMicro.Supervisor.Tracing;

/// <summary>
/// The tracing thread of UML's TT mode: a dedicated host thread that starts the guest, seizes it, and
/// then services every stop of every guest task in a synchronous loop. ptrace only works from the
/// thread that attached a tracee, so nothing here may hop threads (no async, no thread pool).
/// Guest tasks are host threads and run in parallel on all host CPUs; they stop only at syscalls.
/// </summary>
internal sealed unsafe partial class TracerThread(Kernel kernel, TrapMode mode, bool observeAll, string launcher, string program, IReadOnlyList<string> argv,
    bool deterministicLayout = false)
    : ISyscallInjector
{
    /// <summary>TT mode turns a syscall the kernel handles itself into this harmless one on the host.</summary>
    private const int NullSyscall = 39; // getpid

    private readonly Kernel _k = kernel;
    private readonly long _idle = TrapPath.IdleRequest(mode);
    private int _initHostPid;
    private int? _initStatus;
    private Exception? _failure;

    /// <summary>Wait status of guest pid 1 once it has ended.</summary>
    public int? InitStatus => _initStatus;

    /// <summary>Host pid of guest pid 1, once started (0 before).</summary>
    public int InitHostPid => Volatile.Read(ref _initHostPid);

    /// <summary>Set when the tracer stopped because the kernel itself failed (e.g. a server broke its contract).</summary>
    public Exception? Failure => _failure;

    /// <summary>Runs the guest to the end on a new dedicated thread; returns when guest pid 1 and all its tasks are gone.</summary>
    public void Run(Action onStarted)
    {
        var thread = new Thread(() =>
        {
            try
            {
                Start();
                onStarted();
                Loop();
            }
            catch (Exception e)
            {
                _failure = e;
                KillAll();
                Drain();
            }
        })
        { Name = "tracer", IsBackground = true };
        thread.Start();
        thread.Join();
    }

    private void Start()
    {
        // One virtual CPU: the guest and its tracer share one host CPU, so a stop never pays a cross-CPU
        // wake-up (5-7x the cost of a same-CPU stop here, see bench/RESULTS.md). The guest inherits the pin.
        if (_k.Cpus == 1) Interop.PinToCpu(0, Math.Max(0, Interop.sched_getcpu()));
        int pid = Spawn();
        int status;
        if (waitpid(pid, &status, WUNTRACED | __WNOTHREAD) != pid || !WIFSTOPPED(status))
            throw new InvalidOperationException($"launcher did not stop (status 0x{status:x})");
        if (!PtraceOps.Seize(pid, TrapPath.Options(mode)))
            throw new InvalidOperationException($"PTRACE_SEIZE failed: errno {LastErrno}");
        var grant = _k.Sched.Call(s => s.StartInitAsync(pid));
        var init = _k.Tasks.GetOrAdd(pid);
        init.HostTgid = pid;
        init.Vpid = grant.Vpid;
        init.Vtid = grant.Vtid;
        init.Started = true;
        init.ResumeRequest = _idle;
        _k.Vcpus.Admit(init.Vcpu, _idle); // the first thread: a vCPU is free
        _k.Pids.Add(grant.Vtid, pid);
        Volatile.Write(ref _initHostPid, pid);
        // The launcher sits in a group-stop: the seize turns it into a ptrace stop, SIGCONT ends the group-stop.
        kill(pid, Signals.SIGCONT);
    }

    /// <summary>The umlmicro script leaves the signals the user's shell ignored here (a hex SigIgn mask).</summary>
    private const string SigIgnVariable = "_UMLMICRO_SIGIGN";

    /// <summary>posix_spawn (vfork-based, safe from managed code) of the launcher, from this thread so it is our child.</summary>
    private int Spawn()
    {
        string filter = mode == TrapMode.Seccomp ? SeccompFilter.ToHex(SeccompFilter.Build(everything: observeAll)) : "-";
        var args = new List<string>
        {
            launcher, Environment.GetEnvironmentVariable(SigIgnVariable) ?? "0", filter, deterministicLayout ? "fixed" : "random", program,
        };
        args.AddRange(argv);
        int err = Interop.Spawn(args, GuestEnvironment(), out int pid);
        if (err != 0) throw new InvalidOperationException($"cannot start {launcher}: errno {err}");
        return pid;
    }

    /// <summary>The supervisor's own environment block as it started (not .NET's view of it), less our own variable.</summary>
    private static List<string> GuestEnvironment()
    {
        var env = new List<string>();
        for (var p = Environ; *p != null; p++)
        {
            var entry = Marshal.PtrToStringUTF8((nint)(*p))!;
            if (!entry.StartsWith(SigIgnVariable + "=", StringComparison.Ordinal)) env.Add(entry);
        }
        return env;
    }

    private void Loop()
    {
        int status;
        while (true)
        {
            int tid = waitpid(-1, &status, __WALL | __WNOTHREAD);
            if (tid < 0)
            {
                int e = LastErrno;
                if (e == EINTR) continue;
                if (e == ECHILD) return;
                throw new InvalidOperationException($"waitpid failed: errno {e}");
            }
            if (tid == _tickerPid) Ticked(status);
            else Dispatch(tid, status);
            if (_initStatus is not null && _k.Tasks.Count == 0)
            {
                StopTicker();
                return;
            }
            KeepTicking();
        }
    }

    private void Dispatch(int tid, int status)
    {
        if (!WIFSTOPPED(status))
        {
            TaskGone(tid, status);
            return;
        }
        var task = _k.Tasks.GetOrAdd(tid);
        int sig = WSTOPSIG(status);
        int ev = PtraceEvent(status);
        if (sig == PtraceOps.SyscallTrap || ev == PtraceOps.EVENT_SECCOMP)
        {
            SyscallStop(task);
            return;
        }
        switch (ev)
        {
            case PtraceOps.EVENT_FORK or PtraceOps.EVENT_VFORK or PtraceOps.EVENT_CLONE:
                Cloned(task, ev);
                Resume(task);
                break;
            case PtraceOps.EVENT_EXEC:
                Execed(task);
                break;
            case PtraceOps.EVENT_STOP:
                if (!task.Started) FirstStop(task);
                else if (sig is Signals.SIGSTOP or Signals.SIGTSTP or Signals.SIGTTIN or Signals.SIGTTOU) JobStop(task);
                else
                {
                    // SIGTRAP: the scheduler's PTRACE_INTERRUPT (Resume parks the task if it is still to stop),
                    // or the end of a job-control stop that was being listened to.
                    task.JobStopped = false;
                    Resume(task);
                }
                break;
            case 0:
                // signal-delivery-stop: hand the signal on, as the host would have delivered it.
                if (task.Phase is SyscallPhase.SkippedExit or SyscallPhase.ReissueEntry) AbandonReissue(task);
                TranslateSigInfo(task, sig);
                Resume(task, sig);
                break;
            default:
                Resume(task);
                break;
        }
    }


    /// <summary>
    /// A group-stop (SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU): left stopped with PTRACE_LISTEN, so that the parent's
    /// wait sees it (WUNTRACED) and SIGCONT ends it. It wants no vCPU meanwhile, so a pending hold is dropped:
    /// the scheduler sees it is not running at its next tick.
    /// </summary>
    private void JobStop(GuestTask task)
    {
        task.JobStopped = true;
        task.Vcpu.Hold = Scheduling.HoldReason.None;
        PtraceOps.Listen(task.HostTid);
    }
}
