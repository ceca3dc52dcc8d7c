using UmlMicro.Contracts.Syscalls;
using UmlMicro.Supervisor.Ptrace;
using UmlMicro.Supervisor.Scheduling;
using UmlMicro.Supervisor.Syscalls;

namespace UmlMicro.Supervisor.Guest;

/// <summary>
/// One guest thread, which is one host thread traced by one tracer thread. It holds what Sched granted
/// it (its virtual ids) so that getpid and gettid never need a server round trip.
/// </summary>
internal sealed class GuestTask(int hostTid)
{
    public int HostTid { get; set; } = hostTid;

    /// <summary>Host pid of the thread group (process) this task belongs to.</summary>
    public int HostTgid { get; set; }

    public int Vpid { get; set; }
    public int Vtid { get; set; }

    /// <summary>The task's tid in the guest's pid namespace on the host: what names it in a call the guest itself
    /// makes (an injected setpriority, say). The host tid when the guest has no pid namespace.</summary>
    public int NsTid { get; set; }

    /// <summary>Where the task is in a syscall the tracer is following.</summary>
    public SyscallPhase Phase { get; set; }

    /// <summary>How the task is resumed at its next stop that is not a syscall stop (a signal, an event).</summary>
    public long ResumeRequest { get; set; }

    /// <summary>False until the new task's first stop has been seen and its ids have been granted.</summary>
    public bool Started { get; set; }

    /// <summary>Its creator's clone event has been handled: the task has its ids.</summary>
    public bool Identified { get; set; }

    /// <summary>Its first stop came before its creator's clone event: it waits, stopped.</summary>
    public bool ParkedAtFirstStop { get; set; }

    /// <summary>The syscall in flight: decoded at entry, finished at exit.</summary>
    public SyscallCall Call { get; } = new();

    /// <summary>A clone/fork in flight in this task: what the new task needs to know when it appears.</summary>
    public PendingClone? Clone { get; set; }

    /// <summary>Where the kernel's scratch mapping sits in this task's address space (0: none yet; gone at exec).</summary>
    public ulong Scratch { get; set; }

    /// <summary>A fork/vfork/clone of a process in flight in this task holds a place under --max-procs (see ProcessLimit).</summary>
    public bool ForkReserved { get; set; }

    /// <summary>What a fork of this task took from the commit budget for its copy and has not settled yet: a fork
    /// restarted after a signal handler (ERESTARTNOINTR, no exit handler) is already paid for.</summary>
    public long ForkCharged { get; set; }

    /// <summary>The task this one just created, for the result of its clone/fork: its host tid, its tid in the guest's
    /// pid namespace (what the host returns to the creator there; PidTranslation.NoSuchPid when it was gone before
    /// it could be read) and its virtual tid.</summary>
    public (int HostTid, int NsTid, int Vtid)? CloneResult { get; set; }

    /// <summary>
    /// Its credentials as last read from the host (the VFS checks permissions with them), or null until they are
    /// needed. Credentials change only by the task's own calls (the set*id family, setgroups, capset) and by execve:
    /// each of those drops this at its entry, before the host can change them, so no path call of the task is asked
    /// with credentials it no longer has.
    /// </summary>
    public HostStatus.TaskCredentials? Creds { get; set; }

    /// <summary>Sched keeps it at SCHED_DEADLINE without reset-on-fork: Linux's sched_fork refuses it a child or a
    /// thread (EAGAIN). Noted from Sched's answer whenever its attributes are set.</summary>
    public bool DeadlineNoFork { get; set; }

    /// <summary>Its standing with the virtual CPUs (see VcpuScheduler).</summary>
    public SchedEntity Vcpu => _vcpu ??= new SchedEntity(this);
    private SchedEntity? _vcpu;

    /// <summary>In a job-control stop (the tracer left it in PTRACE_LISTEN): it does not want a vCPU.</summary>
    public bool JobStopped { get; set; }

    public bool IsThreadGroupLeader => HostTid == HostTgid;

    public override string ToString() => $"task {Vtid} (host {HostTid})";
}

/// <summary>The syscall stops a task still owes the tracer.</summary>
internal enum SyscallPhase
{
    /// <summary>Not in a followed syscall: the next syscall stop is an entry.</summary>
    None,
    /// <summary>In a call whose exit stop the tracer wants (the host runs it, or tt nullified it).</summary>
    AwaitExit,
    /// <summary>sysemu: the host skipped the call; the tracer re-issues it and first sees the skipped call's exit.</summary>
    SkippedExit,
    /// <summary>sysemu: the next entry stop is the re-issued call.</summary>
    ReissueEntry,
}

/// <summary>The flags and tid pointers of a fork/vfork/clone/clone3, read at its entry stop.</summary>
internal sealed record PendingClone(ulong Flags, ulong ParentTidPtr, ulong ChildTidPtr)
{
    public bool Has(ulong flag) => (Flags & flag) != 0;

    /// <summary>The guest's first argument when the kernel handed the host another one (clone's flags without
    /// CLONE_UNTRACED, clone3's copied clone_args): the new task starts with the creator's registers, so it gets the
    /// guest's value back at its first stop, as the creator does at its exit stop.</summary>
    public ulong? GuestArg0 { get; init; }
}
