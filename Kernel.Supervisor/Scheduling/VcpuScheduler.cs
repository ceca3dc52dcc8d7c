using System.Diagnostics;
using UmlMicro.Supervisor.Ptrace;

namespace UmlMicro.Supervisor.Scheduling;

/// <summary>
/// The virtual CPUs: at most <see cref="Cpus"/> guest threads execute at any moment; a thread without a vCPU
/// stays stopped (in a ptrace stop) until the policy gives it one.
/// <para>
/// A grant is held by the supervisor, not asked for per syscall: a granted thread is resumed at its stops
/// like any other, so a guest with no more threads than vCPUs never pays for scheduling. A granted thread
/// uses a vCPU only while the host runs it: one blocked in a host syscall (read on a pipe, futex, wait4 —
/// which in seccomp mode never stops) does not count, or a thread blocked holding the only vCPU would
/// deadlock against the thread that is to wake it. Who really runs is read from the host at each tick
/// (<see cref="HostThreadState"/>): the tracer gets a tick every half quantum while more threads hold
/// grants than there are vCPUs, or threads wait, and never otherwise.
/// </para>
/// <para>
/// At a tick: if more granted threads run than there are vCPUs (blocked ones woke up), the policy names
/// victims; else waiting threads get the free vCPUs; then, while threads still wait, every running thread
/// whose quantum the policy says expired is preempted. A thread is stopped with PTRACE_INTERRUPT and parked
/// at its next stop, whatever kind it is (the interrupt's PTRACE_EVENT_STOP, or a syscall or signal stop that
/// came first): the tracer does not resume it but hands it here with the request and signal it would have
/// been resumed with, so nothing it was doing — a signal being delivered, a syscall half-way — is lost.
/// It is resumed with them when it gets a vCPU again.
/// </para>
/// Every method is called on the tracer thread (ptrace requests must come from it).
/// </summary>
internal sealed class VcpuScheduler(int cpus, IRunPolicy policy, TimeSpan quantum)
{
    private readonly List<SchedEntity> _granted = [];
    private readonly List<SchedEntity> _running = [];

    public int Cpus { get; } = cpus;
    public IRunPolicy Policy { get; } = policy;
    public TimeSpan Quantum { get; } = quantum;

    /// <summary>How often the tracer ticks while the vCPUs are contended: half a quantum, so a slice ends within 1.5 quanta.</summary>
    public TimeSpan TickPeriod => Quantum / 2;

    /// <summary>Only while more threads hold grants than there are vCPUs, or threads wait, can anything change at a tick.</summary>
    public bool NeedsTick => _granted.Count > Cpus || Policy.Waiting > 0;

    /// <summary>Counters for --stats.</summary>
    public long Preemptions { get; private set; }
    public long Ticks { get; private set; }

    /// <summary>
    /// A new thread at its first stop: it gets a vCPU if one is free and nobody waits (it must not jump the
    /// queue), else it waits, parked with <paramref name="request"/>. Returns whether the tracer may resume it now.
    /// </summary>
    public bool Admit(SchedEntity thread, long request)
    {
        long now = Stopwatch.GetTimestamp();
        if (Policy.Waiting == 0 && (_granted.Count < Cpus || CountRunning() < Cpus))
        {
            Grant(thread, now);
            return true;
        }
        Wait(thread, request, 0, EnqueueReason.New);
        return false;
    }

    /// <summary>
    /// A thread the tracer was about to resume has a hold: it stops here instead and waits, to be resumed with
    /// <paramref name="request"/> and <paramref name="signal"/> later. A hand-off gives its vCPU to the next waiting thread.
    /// </summary>
    public void Park(SchedEntity thread, long request, int signal)
    {
        var reason = thread.Hold;
        thread.Hold = HoldReason.None;
        _granted.Remove(thread);
        Wait(thread, request, signal, reason == HoldReason.HandOff ? EnqueueReason.Preempted : EnqueueReason.Overcommitted);
        if (reason == HoldReason.HandOff) GrantNext();
    }

    /// <summary>sched_yield: when others wait, the thread gives its vCPU to the next one at its resume.</summary>
    public void Yield(SchedEntity thread)
    {
        if (thread.State != VcpuState.Granted || Policy.Waiting == 0) return;
        thread.Hold = HoldReason.HandOff;
    }

    /// <summary>
    /// The thread is about to wait (wait4, waitid): a waiting thread gets its vCPU now rather than at the next
    /// tick — a shell's forked child starts at once. The caller keeps its grant; should it not block after all,
    /// the next tick finds one thread too many running and stops one.
    /// </summary>
    public void MayBlock(SchedEntity thread)
    {
        if (thread.State == VcpuState.Granted && thread.Hold == HoldReason.None) GrantNext();
    }

    /// <summary>A thread is gone (exit, or a thread of a process that exec'd): its vCPU goes to the next waiting one.</summary>
    public void Forget(SchedEntity thread)
    {
        switch (thread.State)
        {
            case VcpuState.Granted:
                _granted.Remove(thread);
                thread.Hold = HoldReason.None;
                GrantNext();
                break;
            case VcpuState.Waiting:
                Policy.Remove(thread);
                break;
        }
        thread.State = VcpuState.None;
    }

    /// <summary>The periodic decision; see the class comment. Returns whether it decided anything or threads still wait:
    /// while it does not, the tracer may tick less often.</summary>
    public bool Tick()
    {
        Ticks++;
        long now = Stopwatch.GetTimestamp();
        _running.Clear();
        int busy = 0;
        foreach (var t in _granted)
        {
            var host = HostThreadState.Read(t.Task.HostTid);
            if (host is null) continue; // gone: its exit event comes next
            t.Nice = host.Value.Nice;
            bool wants = WantsCpu(t, host.Value);
            if (t.Hold != HoldReason.None && !wants)
            {
                // It blocked before the interrupt stopped it, maybe where an interrupt cannot reach (a vfork
                // parent waits for its child uninterruptibly): it has given its vCPU up itself, so there is
                // nothing to take away. Were its hold kept, the vCPU would stay promised to a waiting thread
                // that perhaps is the very child it waits for. (The armed interrupt still traps it once,
                // later; that stop is just resumed.)
                t.Hold = HoldReason.None;
            }
            if (t.Hold != HoldReason.None)
            {
                // Stopping already; re-arm the interrupt in case a stop the tracer consumed itself (an injected
                // call's) took it. A hand-off's vCPU is promised to a waiting thread, so it stays busy.
                Interrupt(t);
                if (t.Hold == HoldReason.HandOff) busy++;
                continue;
            }
            if (wants)
            {
                _running.Add(t);
                busy++;
            }
            else
            {
                t.SliceStart = now; // it gave the CPU up itself: a fresh slice when it runs again
            }
        }

        bool decided = false;
        for (; busy > Cpus && _running.Count > 0; busy--)
        {
            var victim = Policy.ChooseVictim(_running);
            _running.Remove(victim);
            Hold(victim, HoldReason.Trim);
            decided = true;
        }
        for (; busy < Cpus && Policy.PickNext() is { } next; busy++)
        {
            Resume(next, now);
            decided = true;
        }

        if (Policy.Waiting == 0) return decided;
        int wanting = Policy.Waiting;
        foreach (var t in _running)
        {
            if (wanting == 0) break;
            if (!Policy.QuantumExpired(t, Stopwatch.GetElapsedTime(t.SliceStart, now))) continue;
            Hold(t, HoldReason.HandOff);
            Preemptions++;
            wanting--;
        }
        return true;
    }

    private int CountRunning()
    {
        int n = 0;
        foreach (var t in _granted)
            if (t.Hold == HoldReason.None && HostThreadState.Read(t.Task.HostTid) is { } host && WantsCpu(t, host)) n++;
        return n;
    }

    /// <summary>
    /// Running on the host, or in a ptrace stop that the tracer will resume (a syscall being served): both use
    /// the thread's vCPU. Blocked in a syscall (S, D) or in a job-control stop, it uses none.
    /// </summary>
    private static bool WantsCpu(SchedEntity t, HostThreadState host) =>
        host.Running || (host.State == 't' && !t.Task.JobStopped);

    private void Grant(SchedEntity thread, long now)
    {
        thread.State = VcpuState.Granted;
        thread.Hold = HoldReason.None;
        thread.GrantedAt = thread.SliceStart = now;
        _granted.Add(thread);
    }

    private void Wait(SchedEntity thread, long request, int signal, EnqueueReason reason)
    {
        thread.State = VcpuState.Waiting;
        thread.ParkedRequest = request;
        thread.ParkedSignal = signal;
        Policy.Enqueue(thread, reason);
    }

    private void GrantNext()
    {
        if (Policy.PickNext() is { } next) Resume(next, Stopwatch.GetTimestamp());
    }

    /// <summary>A waiting thread gets a vCPU: resumed as it would have been when it was parked.</summary>
    private void Resume(SchedEntity thread, long now)
    {
        Grant(thread, now);
        PtraceOps.Resume(thread.Task.HostTid, thread.ParkedRequest, thread.ParkedSignal);
        thread.ParkedSignal = 0;
    }

    private static void Hold(SchedEntity thread, HoldReason reason)
    {
        thread.Hold = reason;
        Interrupt(thread);
    }

    /// <summary>PTRACE_INTERRUPT: a PTRACE_EVENT_STOP (SIGTRAP) soon, unless another stop comes first; either way the tracer parks it.</summary>
    private static void Interrupt(SchedEntity thread) => PtraceOps.Interrupt(thread.Task.HostTid);
}
