using UmlMicro.Contracts.Servers;
using UmlMicro.Supervisor.Guest;

namespace UmlMicro.Supervisor.Scheduling;

/// <summary>Where a guest thread stands with the virtual CPUs.</summary>
internal enum VcpuState
{
    /// <summary>Not yet admitted (before its first stop), or gone.</summary>
    None,
    /// <summary>It holds a grant: the tracer resumes it at its stops. It uses a vCPU while the host runs it.</summary>
    Granted,
    /// <summary>Stopped by the scheduler, queued in the policy until it gets a vCPU.</summary>
    Waiting,
}

/// <summary>Why a granted thread is to stop at its next stop.</summary>
internal enum HoldReason
{
    None,
    /// <summary>It gives its vCPU to the next waiting thread (quantum expired, yield).</summary>
    HandOff,
    /// <summary>Too many threads run: its vCPU was never there.</summary>
    Trim,
}

/// <summary>The scheduler's view of one guest thread: what it tells Sched's policy at a tick, and what the mechanism keeps.</summary>
internal sealed class SchedEntity(GuestTask task)
{
    public GuestTask Task { get; } = task;
    public int Vtid => Task.Vtid;

    /// <summary>The thread's nice value on the host (setpriority, nice, sched_setattr), as of the last tick.</summary>
    public int Nice { get; internal set; }

    /// <summary>Stopwatch timestamp since when it runs without a break (reset when it is seen blocked).</summary>
    public long SliceStart { get; internal set; }

    /// <summary>Stopwatch timestamp of its latest grant.</summary>
    public long GrantedAt { get; internal set; }

    /// <summary>Stopwatch timestamp since when it waits for a vCPU.</summary>
    public long WaitingSince { get; internal set; }

    /// <summary>The host CPU time it had used when last seen running, in nanoseconds.</summary>
    public long RunNs { get; internal set; }

    /// <summary>Why it waits (while it does), or why it is to wait once its hold stops it.</summary>
    public VcpuStanding Standing { get; internal set; } = VcpuStanding.Running;

    internal VcpuState State { get; set; }
    internal HoldReason Hold { get; set; }

    /// <summary>While it waits: how it was to be resumed, and with which signal, when it was stopped.</summary>
    internal long ParkedRequest { get; set; }
    internal int ParkedSignal { get; set; }

    /// <summary>Its place in the run queue (for an O(1) removal).</summary>
    internal LinkedListNode<SchedEntity>? QueueNode { get; set; }

    public override string ToString() => $"thread {Vtid} ({State})";
}
