using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading.Tasks;
using StreamJsonRpc;

namespace UmlMicro.Contracts.Servers;

/// <summary>What kind of task a fork/vfork/clone/clone3 made.</summary>
public enum CloneKind
{
    /// <summary>A new process (fork, or clone without CLONE_THREAD).</summary>
    Process,
    /// <summary>A new thread in the parent's thread group (CLONE_THREAD).</summary>
    Thread,
}

public sealed record SchedConfig(int Cpus);

/// <summary>The ids Sched grants a task: its process (thread-group) id and its own thread id, both virtual.</summary>
public sealed record TaskGrant(int Vpid, int Vtid);

/// <summary>A task was created on the host: <paramref name="CloneParent"/> is set for CLONE_PARENT/CLONE_THREAD
/// (the new task's parent is the creator's parent). <paramref name="Pid"/> is the number the guest's pid namespace on
/// the host gave it (0 when the guest has none): Sched grants that one when it is free.</summary>
public sealed record TaskCreation(int CreatorVtid, int HostTid, CloneKind Kind, bool CloneParent, int Pid = 0);

/// <summary>A task ended. <paramref name="Status"/> is the wait status the host reported.</summary>
public sealed record TaskExit(int Vtid, int Status);

/// <summary>A process group or session change that the host carried out for a guest process.</summary>
public sealed record GroupChange(int Vpid, int Vpgid, bool NewSession);

/// <summary>
/// The scheduler server: owns the virtual pid namespace (pid 1 is the first guest process), the
/// process/thread tree, process groups and sessions, and the virtual CPUs. The supervisor keeps the
/// grants it is given (a thread's own ids) and asks again only when something changes.
/// </summary>
[JsonRpcContract, PolyType.GenerateShape(IncludeMethods = PolyType.MethodShapeFlags.PublicInstance)]
public partial interface ISchedServer : IKernelServer
{
    [Restore(RestoreKind.Replay)]
    [JsonRpcMethod("sched/configure")]
    Task ConfigureAsync(SchedConfig config);

    /// <summary>The first guest process started on the host as <paramref name="hostPid"/>; it becomes pid 1.</summary>
    [Restore(RestoreKind.Replay)]
    [JsonRpcMethod("sched/start_init")]
    Task<TaskGrant> StartInitAsync(int hostPid);

    [Restore(RestoreKind.Replay)]
    [JsonRpcMethod("sched/task_created")]
    Task<TaskGrant> TaskCreatedAsync(TaskCreation creation);

    /// <summary>
    /// Sets aside up to <paramref name="count"/> free numbers for the supervisor's next tasks (the ones those tasks
    /// would be given, in that order), so that a clone needs no round trip: the supervisor gives a new task one of
    /// them when it may (with a pid namespace on the host: when it is the number the host gave the task) and says so
    /// with sched/task_started. A number set aside stays taken until a task takes it or sched/release_pids gives it back.
    /// </summary>
    [Restore(RestoreKind.Replay)]
    [JsonRpcMethod("sched/reserve_pids")]
    Task<IReadOnlyList<int>> ReservePidsAsync(int count);

    /// <summary>Numbers set aside that the supervisor will not use: free again.</summary>
    [Restore(RestoreKind.Replay)]
    [JsonRpcMethod("sched/release_pids")]
    Task ReleasePidsAsync(IReadOnlyList<int> pids);

    /// <summary>A task was created with a number set aside (<see cref="TaskCreation.Pid"/>): it is the task's tid, and
    /// its pid unless it is a thread (whose pid is its creator's). Everything else is as sched/task_created; nothing is
    /// answered.</summary>
    [Restore(RestoreKind.Replay)]
    [JsonRpcMethod("sched/task_started")]
    Task TaskStartedAsync(TaskCreation creation);

    /// <summary>A process called execve successfully; its other threads are gone.</summary>
    [Restore(RestoreKind.Replay)]
    [JsonRpcMethod("sched/exec")]
    Task ExecAsync(int vpid);

    [Restore(RestoreKind.Replay)]
    [JsonRpcMethod("sched/task_exited")]
    Task TaskExitedAsync(TaskExit exit);

    /// <summary>A zombie was waited for: its pid is free again.</summary>
    [Restore(RestoreKind.Replay)]
    [JsonRpcMethod("sched/reaped")]
    Task ReapedAsync(int vpid);

    /// <summary>The parent's virtual pid of process <paramref name="vpid"/> (0 for pid 1).</summary>
    [JsonRpcMethod("sched/parent")]
    Task<int> ParentAsync(int vpid);

    [Restore(RestoreKind.Replay)]
    [JsonRpcMethod("sched/group_changed")]
    Task GroupChangedAsync(GroupChange change);

    /// <summary>How many virtual CPUs the guest sees.</summary>
    [JsonRpcMethod("sched/cpus")]
    Task<int> CpusAsync();

    /// <summary>Every guest process (zombies too) with its ids and threads, in pid order: what procfs shows.</summary>
    [JsonRpcMethod("sched/processes")]
    Task<IReadOnlyList<ProcessFacts>> ProcessesAsync();

    /// <summary>Process <paramref name="vpid"/> made itself a child subreaper (prctl PR_SET_CHILD_SUBREAPER), or stopped
    /// being one: an orphaned descendant goes to its nearest living subreaper ancestor, else to pid 1, as the host
    /// reparents it.</summary>
    [Restore(RestoreKind.Replay)]
    [JsonRpcMethod("sched/child_subreaper")]
    Task ChildSubreaperAsync(int vpid, bool on);
}
