using UmlMicro.Contracts.Servers;
using static UmlMicro.Contracts.Linux.SchedAbi;
using Errno = UmlMicro.Contracts.Linux.Errno;

namespace UmlMicro.ContractTests;

/// <summary>Each thread's scheduling attributes (sched.md, "Scheduling attributes"): sched/getpriority,
/// sched/setpriority, sched/setattr, sched/getattr, with Linux's rules, inheritance, checkpoints, and how the run
/// policy ranks the classes.</summary>
[Trait(Kit.Kind, Kit.Semantics), Trait(Kit.Server, "sched")]
public sealed class SchedAttrContractTests() : ServerContractTest<ISchedServer>("Sched")
{
    private const int HostInit = 5000;
    private const uint User = 1000, Other = 1001;

    /// <summary>Root with CAP_SYS_NICE, or a user without it, with the given soft RLIMIT_NICE and RLIMIT_RTPRIO.</summary>
    private static TaskCreds Root(int vtid) => new(vtid, 0, 0, true, 0, 0);

    private static TaskCreds Plain(int vtid, uint uid = User, long niceLimit = 0, long rtprioLimit = 0) => new(vtid, uid, uid, false, niceLimit, rtprioLimit);

    private Task<PriorityAnswer> Renice(TaskCreds caller, int which, int who, int nice, params TaskCreds[] owners) =>
        Proxy.SetPriorityAsync(new PriorityRequest(caller, which, who, nice, owners));

    private Task<int> Priority(TaskCreds caller, int which, int who, params TaskCreds[] owners) =>
        Proxy.GetPriorityAsync(new PriorityRequest(caller, which, who, 0, owners));

    private Task<int> Set(TaskCreds caller, int who, SchedAttr attr, TaskCreds owner, bool legacy = false) =>
        Proxy.SetAttrAsync(new AttrRequest(caller, who, attr, legacy, [owner]));

    private static SchedAttr Fifo(int priority, long flags = 0) => new(SCHED_FIFO, flags, 0, priority);

    private static SchedAttr Deadline(long runtimeMs, long deadlineMs, long periodMs) =>
        new(SCHED_DEADLINE, 0, 0, 0, runtimeMs * Ms, deadlineMs * Ms, periodMs * Ms);

    private const long Ms = 1_000_000;

    private static void Same(PriorityAnswer expected, PriorityAnswer actual) => Assert.Equivalent(expected, actual, strict: true);

    [Fact]
    public async Task Root_lowers_and_raises_a_nice_value_and_getpriority_answers_20_minus_the_highest()
    {
        await Proxy.StartInitAsync(HostInit);
        Assert.Equal(20, await Priority(Root(1), PRIO_PROCESS, 0));

        Same(new PriorityAnswer(0, [1]), await Renice(Root(1), PRIO_PROCESS, 0, -30, Root(1)));
        Assert.Equal(MIN_NICE, (await Proxy.GetAttrAsync(1))!.Nice); // clamped to -20
        Assert.Equal(40, await Priority(Root(1), PRIO_PROCESS, 1));
        Same(new PriorityAnswer(0, [1]), await Renice(Root(1), PRIO_PROCESS, 1, 7, Root(1)));
        Assert.Equal(13, await Priority(Root(1), PRIO_PROCESS, 0));

        Assert.Equal(-Errno.ESRCH, await Priority(Root(1), PRIO_PROCESS, 77));
        Assert.Equal(-Errno.EINVAL, await Priority(Root(1), 3, 0));
        Assert.Equal(-Errno.ESRCH, (await Renice(Root(1), PRIO_PROCESS, 77, 0)).Result);
        Assert.Equal(-Errno.EINVAL, (await Renice(Root(1), -1, 0, 0)).Result);
    }

    [Fact]
    public async Task A_user_may_raise_its_nice_value_but_lowers_it_only_within_rlimit_nice_else_EACCES()
    {
        await Proxy.StartInitAsync(HostInit);
        Assert.Equal(0, (await Renice(Plain(1), PRIO_PROCESS, 0, 10, Plain(1))).Result);
        Assert.Equal(-Errno.EACCES, (await Renice(Plain(1), PRIO_PROCESS, 0, 9, Plain(1))).Result);
        Assert.Equal(10, (await Proxy.GetAttrAsync(1))!.Nice);

        // RLIMIT_NICE 25 allows down to nice -5 (20 - nice <= 25), not -6.
        Assert.Equal(0, (await Renice(Plain(1, niceLimit: 25), PRIO_PROCESS, 0, -5, Plain(1, niceLimit: 25))).Result);
        Assert.Equal(-Errno.EACCES, (await Renice(Plain(1, niceLimit: 25), PRIO_PROCESS, 0, -6, Plain(1, niceLimit: 25))).Result);
        Assert.Equal(-5, (await Proxy.GetAttrAsync(1))!.Nice);
    }

    [Fact]
    public async Task Another_users_thread_is_EPERM_and_a_refusal_sticks_while_the_others_change()
    {
        await Proxy.StartInitAsync(HostInit);
        await Fork(1); // 2, same group
        await Fork(1); // 3
        TaskCreds mine = Plain(1), two = Plain(2), theirs = Plain(3, Other);

        Assert.Equal(-Errno.EPERM, (await Renice(mine, PRIO_PROCESS, 3, 5, theirs)).Result);
        // The group: 1 and 2 change, 3 refuses, and the answer is that refusal.
        Same(new PriorityAnswer(-Errno.EPERM, [1, 2]), await Renice(mine, PRIO_PGRP, 0, 5, mine, two, theirs));
        Assert.Equal(0, (await Proxy.GetAttrAsync(3))!.Nice);
        // CAP_SYS_NICE may change anyone's.
        Same(new PriorityAnswer(0, [1, 2, 3]), await Renice(Root(1) with { Uid = User, Euid = User }, PRIO_PGRP, 1, 3, mine, two, theirs));
        Assert.Equal(17, await Priority(mine, PRIO_PGRP, 1));
        Assert.Equal(-Errno.ESRCH, await Priority(mine, PRIO_PGRP, 42));
    }

    [Fact]
    public async Task Prio_user_reaches_every_thread_of_the_user_and_only_those()
    {
        await Proxy.StartInitAsync(HostInit);
        await Clone(1); // thread 2 of 1
        await Fork(1);  // 3
        TaskCreds one = Plain(1), two = Plain(2), three = Plain(3, Other);

        Same(new PriorityAnswer(0, [1, 2]), await Renice(one, PRIO_USER, 0, 4, one, two, three));
        Same(new PriorityAnswer(0, [1, 2]), await Renice(one, PRIO_USER, (int)User, 6, one, two, three));
        Assert.Equal(0, (await Proxy.GetAttrAsync(3))!.Nice);
        Assert.Equal(14, await Priority(one, PRIO_USER, 0, one, two, three));
        Assert.Equal(20, await Priority(one, PRIO_USER, (int)Other, one, two, three));
        Assert.Equal(-Errno.ESRCH, await Priority(one, PRIO_USER, 4242, one, two, three));
    }

    [Fact]
    public async Task Real_time_and_deadline_need_cap_sys_nice_and_root_gets_them_back_as_set()
    {
        await Proxy.StartInitAsync(HostInit);

        Assert.Equal(-Errno.EPERM, await Set(Plain(1), 0, Fifo(10), Plain(1)));
        Assert.Equal(-Errno.EPERM, await Set(Plain(1), 0, Deadline(10, 30, 40), Plain(1)));
        // RLIMIT_RTPRIO lets a user take a real-time class up to its limit.
        Assert.Equal(0, await Set(Plain(1, rtprioLimit: 20), 0, Fifo(20), Plain(1, rtprioLimit: 20)));
        Assert.Equal(-Errno.EPERM, await Set(Plain(1, rtprioLimit: 20), 0, Fifo(21), Plain(1, rtprioLimit: 20)));

        Assert.Equal(0, await Set(Root(1), 0, Deadline(10, 30, 40), Root(1)));
        Assert.Equal(new SchedAttr(SCHED_DEADLINE, 0, 0, 0, 10 * Ms, 30 * Ms, 40 * Ms), await Proxy.GetAttrAsync(1));
        Assert.Equal(0, await Set(Root(1), 1, new SchedAttr(SCHED_RR, SCHED_FLAG_RESET_ON_FORK, 0, 99), Root(1)));
        Assert.Equal(new SchedAttr(SCHED_RR, SCHED_FLAG_RESET_ON_FORK, 0, 99), await Proxy.GetAttrAsync(1));
        // sched_setparam (policy -1, legacy): the priority changes, the class and the flag stay.
        Assert.Equal(0, await Set(Root(1), 0, new SchedAttr(SETPARAM_POLICY, 0, 0, 50), Root(1), legacy: true));
        Assert.Equal(new SchedAttr(SCHED_RR, SCHED_FLAG_RESET_ON_FORK, 0, 50), await Proxy.GetAttrAsync(1));
        // A user may not clear reset-on-fork, nor touch another user's thread.
        Assert.Equal(-Errno.EPERM, await Set(Plain(1, rtprioLimit: 99), 0, new SchedAttr(SCHED_RR, 0, 0, 50), Plain(1, rtprioLimit: 99)));
        Assert.Equal(-Errno.ESRCH, await Set(Root(1), 9, Fifo(1), Root(9)));
    }

    [Fact]
    public async Task Bad_policies_priorities_deadline_parameters_and_flags_are_EINVAL_and_too_much_bandwidth_EBUSY()
    {
        await Proxy.ConfigureAsync(new SchedConfig(1));
        await Proxy.StartInitAsync(HostInit);
        await Fork(1);

        Assert.Equal(-Errno.EINVAL, await Set(Root(1), 0, new SchedAttr(4, 0, 0, 0), Root(1)));   // SCHED_ISO
        Assert.Equal(-Errno.EINVAL, await Set(Root(1), 0, Fifo(0), Root(1)));
        Assert.Equal(-Errno.EINVAL, await Set(Root(1), 0, Fifo(100), Root(1)));
        Assert.Equal(-Errno.EINVAL, await Set(Root(1), 0, new SchedAttr(SCHED_NORMAL, 0, 0, 1), Root(1)));
        Assert.Equal(-Errno.EINVAL, await Set(Root(1), 0, Deadline(40, 30, 40), Root(1)));   // runtime > deadline
        Assert.Equal(-Errno.EINVAL, await Set(Root(1), 0, Deadline(10, 30, 20), Root(1)));   // deadline > period
        Assert.Equal(-Errno.EINVAL, await Set(Root(1), 0, Deadline(0, 30, 40), Root(1)));
        Assert.Equal(-Errno.EINVAL, await Set(Root(1), 0, new SchedAttr(SCHED_NORMAL, 0x100, 0, 0), Root(1)));
        Assert.Equal(-Errno.EOPNOTSUPP, await Set(Root(1), 0, new SchedAttr(SCHED_NORMAL, SCHED_FLAG_UTIL_CLAMP_MIN, 0, 0), Root(1)));
        Assert.Equal(Normal(), await Proxy.GetAttrAsync(1));

        // One vCPU takes 95% of DEADLINE bandwidth: 60% and 30% fit, another 10% does not.
        Assert.Equal(0, await Set(Root(1), 1, Deadline(6, 10, 10), Root(1)));
        Assert.Equal(0, await Set(Root(1), 2, Deadline(3, 10, 10), Root(2)));
        Assert.Equal(-Errno.EBUSY, await Set(Root(1), 2, Deadline(4, 10, 10), Root(2)));
    }

    private static SchedAttr Normal() => new(SCHED_NORMAL, 0, 0, 0);

    [Fact]
    public async Task Setattr_sets_nice_with_the_class_and_keep_params_keeps_the_threads_own()
    {
        await Proxy.StartInitAsync(HostInit);
        Assert.Equal(0, await Set(Root(1), 0, new SchedAttr(SCHED_BATCH, 0, -7, 0), Root(1)));
        Assert.Equal(new SchedAttr(SCHED_BATCH, 0, -7, 0), await Proxy.GetAttrAsync(1));
        Assert.Equal(0, await Set(Root(1), 0, new SchedAttr(SCHED_NORMAL, SCHED_FLAG_KEEP_PARAMS, 12, 0), Root(1)));
        Assert.Equal(new SchedAttr(SCHED_NORMAL, 0, -7, 0), await Proxy.GetAttrAsync(1));
        // sched_setscheduler (legacy) leaves the nice value as it is.
        Assert.Equal(0, await Set(Root(1), 0, new SchedAttr(SCHED_IDLE, 0, 5, 0), Root(1), legacy: true));
        Assert.Equal(new SchedAttr(SCHED_IDLE, 0, -7, 0), await Proxy.GetAttrAsync(1));
    }

    [Fact]
    public async Task Children_inherit_reset_on_fork_gives_them_the_defaults_exec_keeps_and_exit_forgets()
    {
        await Proxy.StartInitAsync(HostInit);
        Assert.Equal(0, await Set(Root(1), 0, Fifo(30), Root(1)));
        await Renice(Root(1), PRIO_PROCESS, 0, -3, Root(1));
        await Fork(1);  // 2
        await Clone(2); // thread 3 of 2
        Assert.Equal(new SchedAttr(SCHED_FIFO, 0, -3, 30), await Proxy.GetAttrAsync(2));
        Assert.Equal(new SchedAttr(SCHED_FIFO, 0, -3, 30), await Proxy.GetAttrAsync(3));

        // Reset-on-fork: a real-time parent's child is SCHED_NORMAL at nice 0; a normal one's negative nice goes to 0.
        Assert.Equal(0, await Set(Root(1), 0, Fifo(30, SCHED_FLAG_RESET_ON_FORK), Root(1)));
        await Fork(1);  // 4
        Assert.Equal(Normal(), await Proxy.GetAttrAsync(4));
        Assert.Equal(0, await Set(Root(2), 0, new SchedAttr(SCHED_BATCH, SCHED_FLAG_RESET_ON_FORK, -4, 0), Root(2)));
        await Fork(2);  // 5
        Assert.Equal(new SchedAttr(SCHED_BATCH, 0, 0, 0), await Proxy.GetAttrAsync(5));

        await Proxy.ExecAsync(2);
        Assert.Equal(new SchedAttr(SCHED_BATCH, SCHED_FLAG_RESET_ON_FORK, -4, 0), await Proxy.GetAttrAsync(2));
        Assert.Null(await Proxy.GetAttrAsync(3));
        await Proxy.TaskExitedAsync(new TaskExit(5, 0));
        Assert.Null(await Proxy.GetAttrAsync(5));
    }

    [Fact]
    public async Task A_checkpoint_keeps_every_threads_attributes()
    {
        await Proxy.StartInitAsync(HostInit);
        await Fork(1);
        Assert.Equal(0, await Set(Root(1), 2, Deadline(1, 5, 10), Root(2)));
        await Renice(Root(1), PRIO_PROCESS, 1, 9, Root(1));

        var successor = await Successor();
        await successor.RestoreAsync((await Proxy.CheckpointAsync())!);

        Assert.Equal(await Proxy.GetAttrAsync(1), await successor.GetAttrAsync(1));
        Assert.Equal(await Proxy.GetAttrAsync(2), await successor.GetAttrAsync(2));
        Assert.Equal(9, (await successor.GetAttrAsync(1))!.Nice);
    }

    [Fact]
    public async Task A_waiting_real_time_thread_takes_a_normal_ones_vcpu_at_once_and_deadline_comes_first()
    {
        await Proxy.ConfigureAsync(new SchedConfig(1, "round-robin", QuantumNs: 10 * Ms));
        await Proxy.StartInitAsync(HostInit);
        await Fork(1); // 2
        await Fork(1); // 3
        await Fork(1); // 4
        Assert.Equal(0, await Set(Root(1), 2, Fifo(10), Root(2)));
        Assert.Equal(0, await Set(Root(1), 3, Fifo(20), Root(3)));

        // 1 (normal) has run 1 ms of its quantum: the waiting FIFO threads still take its vCPU, higher priority first.
        var first = await Proxy.VcpuTickAsync(new VcpuTick(1, [Runs(1, 1), Waits(4, 50), Waits(2, 40), Waits(3, 1)]));
        Assert.Equal([1], first.Preempt);
        Assert.Equal([3, 2, 4], first.Next);

        // A FIFO thread keeps its vCPU against its equals and lower ones however long it runs.
        Assert.Empty((await Proxy.VcpuTickAsync(new VcpuTick(1, [Runs(3, 5000), Waits(2, 40), Waits(1, 40)]))).Preempt);

        // A DEADLINE thread with runtime left ranks above them all.
        Assert.Equal(0, await Set(Root(1), 4, Deadline(5, 20, 20), Root(4)));
        var second = await Proxy.VcpuTickAsync(new VcpuTick(1, [Runs(3, 100, runMs: 100), Waits(4, 1, runMs: 0), Waits(2, 40)]));
        Assert.Equal([3], second.Preempt);
        Assert.Equal(4, second.Next[0]);
    }

    [Fact]
    public async Task Round_robin_threads_of_one_priority_take_turns_after_the_rr_time_slice()
    {
        await Proxy.ConfigureAsync(new SchedConfig(1, "fair-share", QuantumNs: 10 * Ms));
        await Proxy.StartInitAsync(HostInit);
        await Fork(1); // 2
        Assert.Equal(0, await Set(Root(1), 1, new SchedAttr(SCHED_RR, 0, 0, 5), Root(1)));
        Assert.Equal(0, await Set(Root(1), 2, new SchedAttr(SCHED_RR, 0, 0, 5), Root(2)));

        Assert.Empty((await Proxy.VcpuTickAsync(new VcpuTick(1, [Runs(1, 99), Waits(2, 99)]))).Preempt);
        Assert.Equal([1], (await Proxy.VcpuTickAsync(new VcpuTick(1, [Runs(1, 100), Waits(2, 100)]))).Preempt);
    }

    private static VcpuThread Runs(int vtid, long sliceMs, long runMs = 0) => new(vtid, 0, VcpuStanding.Running, runMs * Ms, sliceMs * Ms, 0);

    private static VcpuThread Waits(int vtid, long waitMs, long runMs = 0) => new(vtid, 0, VcpuStanding.New, runMs * Ms, 0, waitMs * Ms);

    private Task<TaskGrant> Fork(int creator) =>
        Proxy.TaskCreatedAsync(new TaskCreation(creator, HostInit + 100 + creator, CloneKind.Process, CloneParent: false));

    private Task<TaskGrant> Clone(int creator) =>
        Proxy.TaskCreatedAsync(new TaskCreation(creator, HostInit + 200 + creator, CloneKind.Thread, CloneParent: false));
}
