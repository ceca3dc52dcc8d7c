using System.Diagnostics;
using UmlMicro.Contracts.Servers;
using UmlMicro.Supervisor.Ptrace;

namespace UmlMicro.Supervisor.Scheduling;

/// <summary>
/// The virtual CPUs: at most <see cref="Cpus"/> guest threads execute at any moment; a thread without a vCPU
/// stays stopped (in a ptrace stop) until it gets one. This is the mechanism; Sched's run policy decides.
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
/// At a tick: if more granted threads run than there are vCPUs (blocked ones woke up), the ones granted last stop
/// and wait at the front of the queue; else waiting threads get the free vCPUs, in the queue's order; then, while
/// threads still wait, the tick's facts go to Sched (<see cref="PolicyLink"/>, off the tracer), whose decision comes
/// back through the doorbell (<see cref="TakeDecision"/>): the threads it preempts give their vCPU to the first
/// waiting thread, and the queue takes its order. While Sched is late or has no policy, the built-in hold preempts a
/// thread that ran a quantum, round-robin. A thread is stopped with PTRACE_INTERRUPT and parked at its next stop,
/// whatever kind it is (the interrupt's PTRACE_EVENT_STOP, or a syscall or signal stop that came first): the tracer
/// does not resume it but hands it here with the request and signal it would have been resumed with, so nothing it
/// was doing — a signal being delivered, a syscall half-way — is lost. It is resumed with them when it gets a vCPU again.
/// </para>
/// Every method is called on the tracer thread (ptrace requests must come from it).
/// </summary>
internal sealed class VcpuScheduler(int cpus, TimeSpan quantum, PolicyLink? policy = null)
{
    private readonly List<SchedEntity> _granted = [];
    private readonly List<SchedEntity> _running = [];
    private readonly RunQueue _waiting = new();

    public int Cpus { get; } = cpus;
    public TimeSpan Quantum { get; } = quantum;

    /// <summary>Sched's policy; null: the built-in round-robin decides (a kernel without servers, in unit tests).</summary>
    public PolicyLink? Policy { get; } = policy;

    /// <summary>How often the tracer ticks while the vCPUs are contended: half a quantum, so a slice ends within 1.5 quanta.</summary>
    public TimeSpan TickPeriod => Quantum / 2;

    /// <summary>How many threads wait for a vCPU.</summary>
    public int Waiting => _waiting.Count;

    /// <summary>Only while more threads hold grants than there are vCPUs, or threads wait, can anything change at a tick.</summary>
    public bool NeedsTick => _granted.Count > Cpus || Waiting > 0;

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
        if (Waiting == 0 && (_granted.Count < Cpus || CountRunning() < Cpus))
        {
            Grant(thread, now);
            return true;
        }
        Wait(thread, request, 0, VcpuStanding.New);
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
        Wait(thread, request, signal, thread.Standing);
        if (reason == HoldReason.HandOff) GrantNext();
    }

    /// <summary>sched_yield: when others wait, the thread gives its vCPU to the next one at its resume.</summary>
    public void Yield(SchedEntity thread)
    {
        if (thread.State != VcpuState.Granted || Waiting == 0) return;
        Hold(thread, HoldReason.HandOff, VcpuStanding.Yielded, interrupt: false);
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
                _waiting.Remove(thread);
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
            // Its vCPU was never there: the latest grant gives way, and waits first in line.
            var victim = _running.MaxBy(t => t.GrantedAt)!;
            _running.Remove(victim);
            Hold(victim, HoldReason.Trim, VcpuStanding.Overcommitted);
            decided = true;
        }
        for (; busy < Cpus && _waiting.TakeFirst() is { } next; busy++)
        {
            Resume(next, now);
            decided = true;
        }

        if (Waiting == 0) return decided;
        if (Policy is null || Policy.Holding)
        {
            Policy?.NoteHeld();
            int wanting = Waiting;
            foreach (var t in _running.OrderByDescending(t => Stopwatch.GetElapsedTime(t.SliceStart, now)))
            {
                if (wanting-- == 0) break;
                if (Stopwatch.GetElapsedTime(t.SliceStart, now) >= Quantum) Preempt(t);
            }
        }
        Policy?.Ask(Report(now));
        return true;
    }

    /// <summary>
    /// Sched's decision, when one came (the doorbell rang): the waiting threads it names get the next vCPUs in its
    /// order, ahead of the others, and the running threads it preempts stop, at most one per waiting thread. A thread
    /// that has blocked, stopped or left since the tick it was decided on is left alone.
    /// </summary>
    public void TakeDecision()
    {
        if (Policy?.Take() is not { } decision) return;
        var first = new List<SchedEntity>();
        foreach (int vtid in decision.Next)
            if (FindWaiting(vtid) is { } t && !first.Contains(t)) first.Add(t);
        for (int i = first.Count - 1; i >= 0; i--)
        {
            _waiting.Remove(first[i]);
            _waiting.AddFirst(first[i]);
        }
        int allowed = Waiting;
        foreach (int vtid in decision.Preempt)
        {
            if (allowed == 0) break;
            var t = _running.Find(r => r.Vtid == vtid);
            if (t is null || t.State != VcpuState.Granted || t.Hold != HoldReason.None) continue;
            Preempt(t);
            allowed--;
        }
    }

    /// <summary>The facts Sched's policy decides from: the threads that ran at this tick and those that wait.</summary>
    private VcpuTick Report(long now)
    {
        var threads = new List<VcpuThread>(_running.Count + Waiting);
        foreach (var t in _running)
        {
            if (t.Hold != HoldReason.None) continue;
            t.RunNs = HostThreadState.ReadRunNs(t.Task.HostTid) ?? t.RunNs;
            threads.Add(new VcpuThread(t.Vtid, t.Nice, VcpuStanding.Running, t.RunNs, Nanoseconds(t.SliceStart, now), 0));
        }
        foreach (var t in _waiting.Threads)
            threads.Add(new VcpuThread(t.Vtid, t.Nice, t.Standing, t.RunNs, 0, Nanoseconds(t.WaitingSince, now)));
        return new VcpuTick(Cpus, threads);
    }

    private static long Nanoseconds(long since, long now) => (long)(Stopwatch.GetElapsedTime(since, now).Ticks * 100);

    private SchedEntity? FindWaiting(int vtid)
    {
        foreach (var t in _waiting.Threads)
            if (t.Vtid == vtid) return t;
        return null;
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
        thread.Standing = VcpuStanding.Running;
        thread.Hold = HoldReason.None;
        thread.GrantedAt = thread.SliceStart = now;
        _granted.Add(thread);
    }

    private void Wait(SchedEntity thread, long request, int signal, VcpuStanding standing)
    {
        thread.State = VcpuState.Waiting;
        thread.Standing = standing;
        thread.WaitingSince = Stopwatch.GetTimestamp();
        thread.ParkedRequest = request;
        thread.ParkedSignal = signal;
        if (standing == VcpuStanding.Overcommitted) _waiting.AddFirst(thread);
        else _waiting.AddLast(thread);
    }

    private void GrantNext()
    {
        if (_waiting.TakeFirst() is { } next) Resume(next, Stopwatch.GetTimestamp());
    }

    /// <summary>A waiting thread gets a vCPU: resumed as it would have been when it was parked.</summary>
    private void Resume(SchedEntity thread, long now)
    {
        Grant(thread, now);
        PtraceOps.Resume(thread.Task.HostTid, thread.ParkedRequest, thread.ParkedSignal);
        thread.ParkedSignal = 0;
    }

    /// <summary>Its quantum is used up: it gives its vCPU to the first waiting thread at its next stop.</summary>
    private void Preempt(SchedEntity thread)
    {
        Hold(thread, HoldReason.HandOff, VcpuStanding.Preempted);
        Preemptions++;
    }

    private static void Hold(SchedEntity thread, HoldReason reason, VcpuStanding standing, bool interrupt = true)
    {
        thread.Hold = reason;
        thread.Standing = standing;
        if (interrupt) Interrupt(thread);
    }

    /// <summary>PTRACE_INTERRUPT: a PTRACE_EVENT_STOP (SIGTRAP) soon, unless another stop comes first; either way the tracer parks it.</summary>
    private static void Interrupt(SchedEntity thread) => PtraceOps.Interrupt(thread.Task.HostTid);
}
