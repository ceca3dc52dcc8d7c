using UmlMicro.Contracts.Servers;
using UmlMicro.Supervisor.Guest;
using UmlMicro.Supervisor.Observability;
using UmlMicro.Supervisor.Scheduling;
using UmlMicro.Supervisor.Servers;
using UmlMicro.Supervisor.Syscalls;

namespace UmlMicro.Supervisor;

/// <summary>What the kernel tells guests about itself: uname fields and CPUs.</summary>
internal sealed record KernelIdentity(string Sysname, string Nodename, string Release, string Version, string Machine, string Domainname);

/// <summary>
/// The kernel as the syscall handlers see it: the three servers, the pid grants, the live tasks and
/// the observability sinks. One instance per guest.
/// </summary>
internal sealed class Kernel(
    ServerLink<IVfsServer> vfs,
    ServerLink<IMmServer> mm,
    ServerLink<ISchedServer> sched,
    KernelIdentity identity,
    int cpus,
    KernelStats stats,
    TraceWriter? trace,
    long memoryLimit = 0,
    MapCheck? mapCheck = null,
    VcpuScheduler? vcpus = null,
    int maxProcs = 0,
    int maxFiles = 0,
    NameCache? names = null,
    string? memoryDir = null)
{
    public ServerLink<IVfsServer> Vfs { get; } = vfs;
    public ServerLink<IMmServer> Mm { get; } = mm;
    public ServerLink<ISchedServer> Sched { get; } = sched;
    public KernelIdentity Identity { get; } = identity;
    public int Cpus { get; } = cpus;
    public KernelStats Stats { get; } = stats;
    public TraceWriter? Trace { get; } = trace;

    /// <summary>The virtual CPUs and their run policy (round-robin with a 10 ms quantum unless configured).</summary>
    public VcpuScheduler Vcpus { get; } = vcpus ?? new VcpuScheduler(cpus, TimeSpan.FromMilliseconds(10));

    /// <summary>Which host CPUs the tracer and the guest's tasks run on: gathered on one unless two tasks are busy.</summary>
    public CpuPlacement HostCpus { get; } = new(cpus);

    public PidMap Pids { get; } = new();

    /// <summary>Numbers Sched set aside for the next tasks, so that a clone needs no round trip.</summary>
    public PidReserve PidReserve { get; } = new();

    /// <summary>The VFS's leases on path answers, or null when none are kept.</summary>
    public NameCache? Names { get; } = names;

    /// <summary>The host files a procfs Render names: the host's text of a task, and where its text is written.</summary>
    public ProcTextFiles ProcText { get; } = new(memoryDir);

    /// <summary>Sched's list of the guest's processes, until Sched is next sent a change.</summary>
    public ProcessList ProcessList { get; } = new(sched);

    /// <summary>Sched's getppid and getsid answers, until a task ends or a session is made.</summary>
    public LineageCache Lineage { get; } = new();
    public TaskTable Tasks { get; } = new();
    public SyscallRouter Router { get; } = new();

    /// <summary>The guest's commit budget under --mem (see SysMmap).</summary>
    public CommitBudget Commit { get; } = new(mm, memoryLimit, new HeapBreaks());

    /// <summary>Each process's break, as MM granted it at the exec and brk moved it since (see SysMmap).</summary>
    public HeapBreaks Breaks => Commit.Breaks;

    /// <summary>Where mmap(NULL, ...) goes: windows MM granted, placed in without a round trip (see SysMmap).</summary>
    public Placement Placement { get; } = new(mm);

    /// <summary>The System V segments the guest made, each committed from its shmget to its destruction (see SysMmap).</summary>
    public SysvShm Shm { get; } = new();

    /// <summary>--max-files: the guest's hard RLIMIT_NOFILE may not go above it (0: no such rule).</summary>
    public int MaxFiles { get; } = maxFiles;

    /// <summary>The count of guest processes under --max-procs.</summary>
    public ProcessLimit Processes { get; } = new(maxProcs);

    /// <summary>The debug comparison of MM's maps with the host's (Mm:CheckMaps), or null.</summary>
    public MapCheck? MapCheck { get; } = mapCheck;

    /// <summary>A zombie is gone (a wait took it, or the host did because its parent ignores SIGCHLD): its pid is free
    /// in Sched, its grant is dropped so that no guest call can reach a host process that reuses the number.</summary>
    public void Reaped(int vpid)
    {
        Pids.Remove(vpid);
        Processes.Reaped(vpid);
        Sched.Post(nameof(ISchedServer.ReapedAsync), vpid);
    }
}
