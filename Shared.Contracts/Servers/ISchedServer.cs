using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading.Tasks;
using StreamJsonRpc;

namespace UmlMicro.Contracts.Servers;

/// <summary>One guest process as Sched keeps it (sched/processes): its pid, the host pid of its thread group, its
/// parent, process group and session, and its threads in tid order (none for a zombie).</summary>
public sealed record ProcessFacts(int Vpid, int HostPid, int Ppid, int Pgid, int Sid, IReadOnlyList<ThreadFacts> Threads);

/// <summary>A thread of a guest process: its guest tid and its host tid.</summary>
public sealed record ThreadFacts(int Vtid, int HostTid);

/// <summary>What kind of task a fork/vfork/clone/clone3 made.</summary>
public enum CloneKind
{
    /// <summary>A new process (fork, or clone without CLONE_THREAD).</summary>
    Process,
    /// <summary>A new thread in the parent's thread group (CLONE_THREAD).</summary>
    Thread,
}

/// <summary>
/// The guest's virtual CPUs and how they are shared (contract version 6): <paramref name="Policy"/> names the run
/// policy this server applies at each sched/vcpu_tick (round-robin, fifo and fair-share, defined in sched.md's "Run
/// policies"; a name the server does not know is refused with -32000), <paramref name="QuantumNs"/> its time slice at
/// nice 0 in nanoseconds (at least 1).
/// </summary>
public sealed record SchedConfig(int Cpus, string Policy = "round-robin", long QuantumNs = 10_000_000);

/// <summary>Where a guest thread stands with the virtual CPUs at a tick.</summary>
public enum VcpuStanding
{
    /// <summary>It holds a vCPU and runs (or is runnable) on the host.</summary>
    Running,
    /// <summary>Waiting for a vCPU since it was created, when every vCPU was taken.</summary>
    New,
    /// <summary>Waiting since it was preempted (its quantum used up, by this server's decision).</summary>
    Preempted,
    /// <summary>Waiting since it called sched_yield while others waited.</summary>
    Yielded,
    /// <summary>Waiting since it was stopped because more threads ran than there are vCPUs (blocked ones woke up).</summary>
    Overcommitted,
}

/// <summary>
/// One guest thread at a tick. <paramref name="Nice"/> is its nice value on the host (since contract version 8 the
/// policies weigh by the one Sched keeps, which the host may lack: a lowered one never reaches it); <paramref name="RunNs"/> the CPU
/// time it has used since it started, in nanoseconds, as the host counts it (cumulative: a tick asked again counts
/// nothing twice); <paramref name="SliceNs"/> how long it has run without a break (0 while it waits);
/// <paramref name="WaitNs"/> how long it has waited for a vCPU (0 while it runs).
/// </summary>
public sealed record VcpuThread(int Vtid, int Nice, VcpuStanding Standing, long RunNs, long SliceNs, long WaitNs);

/// <summary>The threads that run on a vCPU and those that wait for one, at a tick (the threads blocked in the host
/// are in neither list: they use no vCPU). <paramref name="Cpus"/> is the number of vCPUs.</summary>
public sealed record VcpuTick(int Cpus, IReadOnlyList<VcpuThread> Threads);

/// <summary>
/// The policy's decision at a tick. <paramref name="Preempt"/>: running threads that have used their quantum and give
/// their vCPU to the first waiting thread (at most one per waiting thread; a thread that is no longer running by the
/// time the decision is carried out is left alone); each then waits at the back of the queue until a later decision
/// orders it. <paramref name="Next"/>: waiting threads in the order they get the vCPUs that come free; waiting threads
/// it leaves out follow, in the order they were waiting.
/// </summary>
public sealed record VcpuDecision(IReadOnlyList<int> Preempt, IReadOnlyList<int> Next);

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
/// What Sched checks a scheduling call with, about the calling thread or a thread it may change (contract version 8):
/// its real and effective uid, whether it holds CAP_SYS_NICE in the guest, and its process's soft RLIMIT_NICE and
/// RLIMIT_RTPRIO (long.MaxValue: unlimited). The supervisor reads them from the host.
/// </summary>
public sealed record TaskCreds(int Vtid, uint Uid, uint Euid, bool CapSysNice, long NiceLimit, long RtprioLimit);

/// <summary>
/// getpriority/setpriority as the guest called them (contract version 8): <paramref name="Which"/> and
/// <paramref name="Who"/> as given (PRIO_PROCESS 0 names a thread, PRIO_PGRP 1 a process group, PRIO_USER 2 a real
/// uid; 0 the caller's), <paramref name="Nice"/> the value to set (ignored by sched/getpriority).
/// <paramref name="Owners"/>: the credentials of every guest thread the call may reach (for PRIO_PROCESS the one it
/// names), which Sched matches users against and checks permissions with.
/// </summary>
public sealed record PriorityRequest(TaskCreds Caller, int Which, int Who, int Nice, IReadOnlyList<TaskCreds> Owners);

/// <summary>What sched/setpriority did: <paramref name="Result"/> the syscall's (0 or -errno, as Linux's loop over
/// the threads leaves it) and <paramref name="Changed"/> the threads whose nice value it set.</summary>
public sealed record PriorityAnswer(int Result, IReadOnlyList<int> Changed);

/// <summary>
/// A thread's scheduling attributes, as Linux's struct sched_attr carries them (contract version 8):
/// <paramref name="Policy"/> Linux's number (SCHED_NORMAL 0, FIFO 1, RR 2, BATCH 3, IDLE 5, DEADLINE 6; in a request
/// -1 keeps the thread's own), <paramref name="Flags"/> sched_flags (SCHED_FLAG_RESET_ON_FORK 1; a DEADLINE thread's
/// RECLAIM 2 and DL_OVERRUN 4), <paramref name="Nice"/> its nice value, <paramref name="Priority"/> its real-time
/// priority (1..99 for FIFO and RR, else 0), the three DEADLINE parameters in nanoseconds (else 0).
/// </summary>
public sealed record SchedAttr(int Policy, long Flags, int Nice, int Priority, long RuntimeNs = 0, long DeadlineNs = 0, long PeriodNs = 0);

/// <summary>
/// sched_setattr, sched_setscheduler or sched_setparam as the guest called them (contract version 8):
/// <paramref name="Who"/> the thread (0: the caller), <paramref name="Attr"/> what it asks for, as read from the guest
/// (sched_setattr's flags KEEP_POLICY and KEEP_PARAMS are Sched's to apply); <paramref name="Legacy"/>: it came from
/// sched_setscheduler or sched_setparam, which leave the nice value as it is. <paramref name="Owners"/>: the
/// credentials of the thread it names.
/// </summary>
public sealed record AttrRequest(TaskCreds Caller, int Who, SchedAttr Attr, bool Legacy, IReadOnlyList<TaskCreds> Owners);

/// <summary>
/// The scheduler server: owns the virtual pid namespace (pid 1 is the first guest process), the
/// process/thread tree, process groups and sessions, and the virtual CPUs. The supervisor keeps the
/// grants it is given (a thread's own ids) and asks again only when something changes.
/// </summary>
[JsonRpcContract, PolyType.GenerateShape(IncludeMethods = PolyType.MethodShapeFlags.PublicInstance)]
public partial interface ISchedServer : IKernelServer
{
    /// <summary>The guest's virtual CPU count (at least 1): the first request after hello.</summary>
    [Restore(RestoreKind.Replay)]
    [JsonRpcMethod("sched/configure")]
    Task ConfigureAsync(SchedConfig config);

    /// <summary>The first guest process started on the host as <paramref name="hostPid"/>; it becomes pid 1.</summary>
    [Restore(RestoreKind.Replay)]
    [JsonRpcMethod("sched/start_init")]
    Task<TaskGrant> StartInitAsync(int hostPid);

    /// <summary>A task was created on the host (fork, vfork, clone, clone3): the answer is its virtual ids.</summary>
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
    [Notification]
    [JsonRpcMethod("sched/release_pids")]
    Task ReleasePidsAsync(IReadOnlyList<int> pids);

    /// <summary>A task was created with a number set aside (<see cref="TaskCreation.Pid"/>): it is the task's tid, and
    /// its pid unless it is a thread (whose pid is its creator's). Everything else is as sched/task_created; nothing is
    /// answered.</summary>
    [Restore(RestoreKind.Replay)]
    [Notification]
    [JsonRpcMethod("sched/task_started")]
    Task TaskStartedAsync(TaskCreation creation);

    /// <summary>A process called execve successfully; its other threads are gone.</summary>
    [Restore(RestoreKind.Replay)]
    [Notification]
    [JsonRpcMethod("sched/exec")]
    Task ExecAsync(int vpid);

    /// <summary>A thread ended; when it was its process's last, the process is a zombie until sched/reaped.</summary>
    [Restore(RestoreKind.Replay)]
    [Notification]
    [JsonRpcMethod("sched/task_exited")]
    Task TaskExitedAsync(TaskExit exit);

    /// <summary>A zombie was waited for: its pid is free again.</summary>
    [Restore(RestoreKind.Replay)]
    [Notification]
    [JsonRpcMethod("sched/reaped")]
    Task ReapedAsync(int vpid);

    /// <summary>The parent's virtual pid of process <paramref name="vpid"/> (0 for pid 1), a zombie's too; for a pid that names no
    /// process the result is -ESRCH (-3), not an error.</summary>
    [JsonRpcMethod("sched/parent")]
    Task<int> ParentAsync(int vpid);

    /// <summary>The host carried out a setpgid or setsid for a guest process.</summary>
    [Restore(RestoreKind.Replay)]
    [Notification]
    [JsonRpcMethod("sched/group_changed")]
    Task GroupChangedAsync(GroupChange change);

    /// <summary>How many virtual CPUs the guest sees.</summary>
    [JsonRpcMethod("sched/cpus")]
    Task<int> CpusAsync();

    /// <summary>Every guest process (zombies too) with its ids and threads, in pid order: what procfs shows.</summary>
    [JsonRpcMethod("sched/processes")]
    Task<IReadOnlyList<ProcessFacts>> ProcessesAsync();

    /// <summary>
    /// The text of /proc/PID/stat or /proc/PID/status (and task/TID's) as the guest sees it, made from the host's text of
    /// the same task: every pid the guest's (its own, its parent's, group's, session's, the terminal's foreground
    /// group, the NUMA group's task; a host task that is no guest task is 0, as Linux prints a pid its namespace
    /// cannot see), no tracer, and a task the kernel's tracer holds shown as running unless it is
    /// <see cref="ProcTextRequest.Stopped"/>. Errno ESRCH for a task Sched does not know (it just ended).
    /// </summary>
    [JsonRpcMethod("sched/proc_text")]
    Task<ProcText> ProcTextAsync(ProcTextRequest request);

    /// <summary>
    /// The run policy's decision, asked once per tick while threads wait for a vCPU (every half quantum at most, never
    /// while the vCPUs are uncontended): who is preempted and who runs next. The supervisor carries it out with ptrace
    /// and keeps the order for the vCPUs that come free until the next tick. Not replayed: the policy's memory (its
    /// queue, fair-share's virtual runtimes) is soft, and a restarted server rebuilds it from the ticks that follow.
    /// While an answer is late (a restart) the supervisor holds the guest with a built-in round-robin; a server that
    /// answers "method not found" (-32601) has no policy, and the built-in one decides for the rest of the run.
    /// </summary>
    [JsonRpcMethod("sched/vcpu_tick")]
    Task<VcpuDecision> VcpuTickAsync(VcpuTick tick);

    /// <summary>Process <paramref name="vpid"/> made itself a child subreaper (prctl PR_SET_CHILD_SUBREAPER), or stopped
    /// being one: an orphaned descendant goes to its nearest living subreaper ancestor, else to pid 1, as the host
    /// reparents it.</summary>
    [Notification]
    [Restore(RestoreKind.Replay)]
    [JsonRpcMethod("sched/child_subreaper")]
    Task ChildSubreaperAsync(int vpid, bool on);

    /// <summary>
    /// getpriority: the highest 20 - nice among the threads <see cref="PriorityRequest"/> names, or -ESRCH (-3) when it
    /// names none, -EINVAL (-22) for a bad "which"; a result, not an error.
    /// </summary>
    [JsonRpcMethod("sched/getpriority")]
    Task<int> GetPriorityAsync(PriorityRequest request);

    /// <summary>
    /// setpriority (and nice, which glibc makes of it): sets the nice value of each thread named, with Linux's
    /// permission rules, and answers what the syscall returns (errors are results, not refusals).
    /// </summary>
    [Restore(RestoreKind.Replay)]
    [JsonRpcMethod("sched/setpriority")]
    Task<PriorityAnswer> SetPriorityAsync(PriorityRequest request);

    /// <summary>
    /// sched_setattr, sched_setscheduler, sched_setparam: sets a thread's scheduling attributes with Linux's checks and
    /// permission rules; answers 0 or -errno (EINVAL, ESRCH, EPERM, EBUSY, EOPNOTSUPP), a result, not an error.
    /// </summary>
    [Restore(RestoreKind.Replay)]
    [JsonRpcMethod("sched/setattr")]
    Task<int> SetAttrAsync(AttrRequest request);

    /// <summary>The scheduling attributes of thread <paramref name="vtid"/>, or null when no such thread lives.</summary>
    [JsonRpcMethod("sched/getattr")]
    Task<SchedAttr?> GetAttrAsync(int vtid);
}
