using StreamJsonRpc;
using UmlMicro.Contracts.Linux;
using UmlMicro.Contracts.Servers;

namespace UmlMicro.ContractTests;

[Trait(Kit.Kind, Kit.Semantics), Trait(Kit.Server, "sched")]
public sealed class SchedContractTests() : ServerContractTest<ISchedServer>("Sched")
{
    private const int HostInit = 4000;

    [Fact]
    public async Task Hello_names_the_sched_contract()
    {
        var hello = await Proxy.HelloAsync();

        Assert.Equal(Contract.SchedName, hello.Name);
        Assert.Equal(Contract.SchedVersion, hello.ContractVersion);
        Assert.Equal(Server.Pid, hello.ServerPid);
    }

    [Fact]
    public async Task Init_is_pid_1_without_a_parent()
    {
        Assert.Equal(new TaskGrant(1, 1), await Proxy.StartInitAsync(HostInit));
        Assert.Equal(0, await Proxy.ParentAsync(1));
    }

    [Fact]
    public async Task Children_get_increasing_pids_and_their_creator_as_parent()
    {
        await Proxy.StartInitAsync(HostInit);

        Assert.Equal(new TaskGrant(2, 2), await Fork(creator: 1));
        Assert.Equal(new TaskGrant(3, 3), await Fork(creator: 1));
        Assert.Equal(1, await Proxy.ParentAsync(2));
        Assert.Equal(1, await Proxy.ParentAsync(3));
    }

    [Fact]
    public async Task Threads_get_their_own_tid_in_the_same_pid_space()
    {
        await Proxy.StartInitAsync(HostInit);
        await Fork(creator: 1);

        Assert.Equal(new TaskGrant(2, 3), await Clone(creator: 2));
        Assert.Equal(new TaskGrant(2, 4), await Clone(creator: 3));
        var child = await Fork(creator: 4);

        Assert.Equal(new TaskGrant(5, 5), child);
        Assert.Equal(2, await Proxy.ParentAsync(5));
    }

    [Fact]
    public async Task Clone_parent_makes_a_sibling_of_the_creator()
    {
        await Proxy.StartInitAsync(HostInit);
        await Fork(creator: 1);

        var sibling = await Proxy.TaskCreatedAsync(new TaskCreation(2, HostInit + 9, CloneKind.Process, CloneParent: true));

        Assert.Equal(1, await Proxy.ParentAsync(sibling.Vpid));
    }

    [Fact]
    public async Task A_zombie_keeps_its_pid_until_reaped_and_the_pid_is_not_reused_at_once()
    {
        await Proxy.StartInitAsync(HostInit);
        await Fork(creator: 1);
        await Proxy.TaskExitedAsync(new TaskExit(2, 0));

        Assert.Equal(1, await Proxy.ParentAsync(2));
        await Proxy.ReapedAsync(2);

        Assert.Equal(-Errno.ESRCH, await Proxy.ParentAsync(2));
        Assert.Equal(new TaskGrant(3, 3), await Fork(creator: 1));
    }

    [Fact]
    public async Task A_process_lives_on_while_any_of_its_threads_does()
    {
        await Proxy.StartInitAsync(HostInit);
        await Fork(creator: 1);
        await Clone(creator: 2);
        await Proxy.TaskExitedAsync(new TaskExit(2, 0));

        await Refused(() => Proxy.ReapedAsync(2));
        Assert.Equal(new TaskGrant(4, 4), await Fork(creator: 3));
        Assert.Equal(2, await Proxy.ParentAsync(4));
    }

    [Fact]
    public async Task A_zombie_is_listed_with_no_threads_and_keeps_its_pid()
    {
        await Proxy.StartInitAsync(HostInit);
        await Fork(creator: 1);
        await Clone(creator: 2);
        await Proxy.TaskExitedAsync(new TaskExit(3, 0));
        await Proxy.TaskExitedAsync(new TaskExit(2, 0));

        var zombie = (await Proxy.ProcessesAsync()).Single(p => p.Vpid == 2);
        Assert.Empty(zombie.Threads);
        Assert.Equal(1, await Proxy.ParentAsync(2));
        // The zombie keeps 2 and the freed thread id 3 is not reused at once.
        Assert.Equal(new TaskGrant(4, 4), await Fork(creator: 1));
    }

    [Fact]
    public async Task After_exec_one_thread_is_left_the_pid_with_the_leaders_host_tid_whichever_thread_called_it()
    {
        await Proxy.StartInitAsync(HostInit);
        await Fork(creator: 1);                      // pid 2, host 4101
        await Clone(creator: 2);                     // tid 3, host 4202
        await Proxy.TaskExitedAsync(new TaskExit(2, 0)); // the leader exits first: the process lives on in tid 3
        var living = (await Proxy.ProcessesAsync()).Single(p => p.Vpid == 2);
        Assert.Equal([new ThreadFacts(3, HostInit + 202)], living.Threads);
        Assert.Equal(-Errno.ESRCH, await Proxy.ParentAsync(3)); // a thread's id names no process

        await Proxy.ExecAsync(2);                    // tid 3 exec'd: Linux gives it the leader's ids

        var after = (await Proxy.ProcessesAsync()).Single(p => p.Vpid == 2);
        Assert.Equal([new ThreadFacts(2, HostInit + 101)], after.Threads);
        Assert.Equal(HostInit + 101, after.HostPid);
    }

    [Fact]
    public async Task Orphans_are_reparented_to_init()
    {
        await Proxy.StartInitAsync(HostInit);
        await Fork(creator: 1);
        await Fork(creator: 2);

        await Proxy.TaskExitedAsync(new TaskExit(2, 0));

        Assert.Equal(1, await Proxy.ParentAsync(3));
    }

    [Fact]
    public async Task Orphans_go_to_the_nearest_living_child_subreaper()
    {
        await Proxy.StartInitAsync(HostInit);
        await Fork(creator: 1); // 2: the subreaper
        await Fork(creator: 2); // 3
        await Fork(creator: 3); // 4
        await Fork(creator: 4); // 5
        await Proxy.ChildSubreaperAsync(2, true);

        await Proxy.TaskExitedAsync(new TaskExit(4, 0));
        Assert.Equal(2, await Proxy.ParentAsync(5)); // two levels up, past 3, which is not one

        await Proxy.ChildSubreaperAsync(2, false);
        await Fork(creator: 3); // 6
        await Fork(creator: 6); // 7
        await Proxy.TaskExitedAsync(new TaskExit(6, 0));
        Assert.Equal(1, await Proxy.ParentAsync(7)); // cleared: init again
    }

    [Fact]
    public async Task Exec_leaves_only_the_process_itself()
    {
        await Proxy.StartInitAsync(HostInit);
        await Fork(creator: 1);
        await Clone(creator: 2);

        await Proxy.ExecAsync(2);

        await Refused(() => Proxy.TaskExitedAsync(new TaskExit(3, 0)));
        Assert.Equal(new TaskGrant(2, 4), await Clone(creator: 2));
    }

    [Fact]
    public async Task Unknown_tasks_are_protocol_errors()
    {
        await Proxy.StartInitAsync(HostInit);

        await Refused(() => Fork(creator: 42));
        await Refused(() => Proxy.TaskExitedAsync(new TaskExit(42, 0)));
        await Refused(() => Proxy.ExecAsync(42));
        await Refused(() => Proxy.ReapedAsync(42));
        Assert.Equal(-Errno.ESRCH, await Proxy.ParentAsync(42));
    }

    [Fact]
    public async Task Groups_and_sessions_are_recorded()
    {
        await Proxy.StartInitAsync(HostInit);
        await Fork(creator: 1);
        await Fork(creator: 2);

        await Proxy.GroupChangedAsync(new GroupChange(2, 2, NewSession: true));
        await Proxy.GroupChangedAsync(new GroupChange(3, 2, NewSession: false));

        await Refused(() => Proxy.GroupChangedAsync(new GroupChange(3, 77, NewSession: false)));
        await Refused(() => Proxy.GroupChangedAsync(new GroupChange(9, 9, NewSession: true)));
    }

    [Fact]
    public async Task Cpus_are_the_configured_count()
    {
        Assert.True(await Proxy.CpusAsync() >= 1);

        await Proxy.ConfigureAsync(new SchedConfig(3));

        Assert.Equal(3, await Proxy.CpusAsync());
    }

    [Fact]
    public async Task Processes_lists_every_guest_process_with_its_ids_and_threads_in_pid_order()
    {
        Assert.Empty(await Proxy.ProcessesAsync());
        await Proxy.StartInitAsync(HostInit);
        await Fork(creator: 1);                      // pid 2, host 4101
        await Clone(creator: 2);                     // tid 3 in pid 2, host 4202
        await Fork(creator: 3);                      // pid 4 (child of 2), host 4103
        await Proxy.GroupChangedAsync(new GroupChange(2, 2, NewSession: true));

        var all = await Proxy.ProcessesAsync();

        Assert.Equal([1, 2, 4], all.Select(p => p.Vpid));
        var init = all[0];
        Assert.Equal((HostInit, 0, 1, 1), (init.HostPid, init.Ppid, init.Pgid, init.Sid));
        Assert.Equal([new ThreadFacts(1, HostInit)], init.Threads);
        var two = all[1];
        Assert.Equal((HostInit + 101, 1, 2, 2), (two.HostPid, two.Ppid, two.Pgid, two.Sid));
        Assert.Equal([new ThreadFacts(2, HostInit + 101), new ThreadFacts(3, HostInit + 202)], two.Threads);
        Assert.Equal((HostInit + 103, 2, 1, 1), (all[2].HostPid, all[2].Ppid, all[2].Pgid, all[2].Sid));
    }

    [Fact]
    public async Task Processes_keeps_a_zombie_until_it_is_reaped()
    {
        await Proxy.StartInitAsync(HostInit);
        await Fork(creator: 1);
        await Proxy.TaskExitedAsync(new TaskExit(2, 0));

        Assert.Equal([1, 2], (await Proxy.ProcessesAsync()).Select(p => p.Vpid));
        await Proxy.ReapedAsync(2);
        Assert.Equal([1], (await Proxy.ProcessesAsync()).Select(p => p.Vpid));
    }

    [Fact]
    public async Task A_fresh_server_restored_from_a_checkpoint_carries_on_exactly_where_the_first_one_was()
    {
        await Proxy.ConfigureAsync(new SchedConfig(3));
        await Proxy.StartInitAsync(HostInit);
        await Fork(creator: 1);                                          // 2
        await Clone(creator: 2);                                         // thread 3 of 2
        await Fork(creator: 2);                                          // 4, child of 2
        await Proxy.GroupChangedAsync(new GroupChange(4, 0, NewSession: true));
        await Proxy.TaskExitedAsync(new TaskExit(4, 9));                 // a zombie
        var checkpoint = await Proxy.CheckpointAsync();
        Assert.NotNull(checkpoint);

        var successor = await Successor();
        await successor.RestoreAsync(checkpoint!);

        Assert.Equivalent(await Proxy.ProcessesAsync(), await successor.ProcessesAsync(), strict: true);
        Assert.Equal(3, await successor.CpusAsync());
        Assert.Equal(2, await successor.ParentAsync(4));
        // The pid namespace came along too: the next numbers are the same, and the zombie's is still taken.
        Assert.Equal(await Fork(creator: 1), await successor.TaskCreatedAsync(new TaskCreation(1, HostInit + 101, CloneKind.Process, CloneParent: false)));
        await successor.ReapedAsync(4);
        await Proxy.ReapedAsync(4);
        Assert.Equivalent(await Proxy.ProcessesAsync(), await successor.ProcessesAsync(), strict: true);
    }

    [Fact]
    public async Task Numbers_set_aside_ahead_are_taken_without_an_answer_and_survive_a_checkpoint()
    {
        await Proxy.ConfigureAsync(new SchedConfig(1));
        await Proxy.StartInitAsync(HostInit);
        var ahead = await Proxy.ReservePidsAsync(3);
        Assert.Equal([2, 3, 4], ahead);
        await Proxy.TaskStartedAsync(new TaskCreation(1, HostInit + 1, CloneKind.Process, CloneParent: false, Pid: 2));
        await Proxy.TaskStartedAsync(new TaskCreation(2, HostInit + 2, CloneKind.Thread, CloneParent: false, Pid: 3));
        var processes = await Proxy.ProcessesAsync();
        Assert.Equal([1, 2], processes.Select(p => p.Vpid));
        Assert.Equal([2, 3], processes[1].Threads.Select(t => t.Vtid));
        Assert.Equal(1, await Proxy.ParentAsync(2));

        var checkpoint = await Proxy.CheckpointAsync();
        var successor = await Successor();
        await successor.RestoreAsync(checkpoint!);
        // 4 is still set aside in the successor: it can be started with, and a new reservation goes on after it.
        await successor.TaskStartedAsync(new TaskCreation(1, HostInit + 3, CloneKind.Process, CloneParent: false, Pid: 4));
        Assert.Equal([5, 6], await successor.ReservePidsAsync(2));
        await successor.ReleasePidsAsync([5, 6]);
        Assert.Equal([1, 2, 4], (await successor.ProcessesAsync()).Select(p => p.Vpid));
        // A number that was not set aside is refused as a protocol violation.
        await Assert.ThrowsAsync<RemoteInvocationException>(() => successor.TaskStartedAsync(new TaskCreation(1, HostInit + 4, CloneKind.Process, CloneParent: false, Pid: 9)));
    }

    [Fact]
    public async Task A_checkpoint_is_restored_into_a_fresh_server_only_and_garbage_is_refused()
    {
        await Proxy.StartInitAsync(HostInit);
        var checkpoint = await Proxy.CheckpointAsync();

        await Refused(() => Proxy.RestoreAsync(checkpoint!));
        var successor = await Successor();
        await Assert.ThrowsAnyAsync<RemoteRpcException>(() => successor.RestoreAsync("{not json"));
        await Assert.ThrowsAnyAsync<RemoteRpcException>(() => successor.RestoreAsync("{\"LastPid\": -5}"));
        Assert.Empty(await successor.ProcessesAsync());
        Assert.Equal(new TaskGrant(1, 1), await successor.StartInitAsync(HostInit));
    }

    [Fact]
    public async Task A_number_set_aside_that_the_host_gave_a_task_passes_to_it_in_task_created()
    {
        await Proxy.StartInitAsync(HostInit);
        Assert.Equal([2, 3, 4], await Proxy.ReservePidsAsync(3));

        // The host's pid namespace gave the new task 3, which is set aside: it is granted (the number passes to the task).
        Assert.Equal(new TaskGrant(3, 3), await Proxy.TaskCreatedAsync(new TaskCreation(1, HostInit + 3, CloneKind.Process, CloneParent: false, Pid: 3)));
        // A number the host gave that is taken otherwise (a live task's) is not: the next free one is.
        Assert.Equal(new TaskGrant(5, 5), await Proxy.TaskCreatedAsync(new TaskCreation(1, HostInit + 5, CloneKind.Process, CloneParent: false, Pid: 1)));
        await Proxy.ReleasePidsAsync([2, 4]);
        Assert.Equal([1, 3, 5], (await Proxy.ProcessesAsync()).Select(p => p.Vpid));
    }

    [Fact]
    public async Task A_release_that_names_a_number_not_set_aside_is_refused_and_releases_none()
    {
        await Proxy.StartInitAsync(HostInit);
        Assert.Equal([2, 3], await Proxy.ReservePidsAsync(2));

        await Refused(() => Proxy.ReleasePidsAsync([2, 99]));
        await Refused(() => Proxy.ReleasePidsAsync([3, 3]));
        // Nothing changed: both are still set aside, and can be released once.
        await Proxy.ReleasePidsAsync([2, 3]);
        await Refused(() => Proxy.ReleasePidsAsync([2]));
    }

    [Fact]
    public async Task A_second_init_is_refused_even_after_the_first_was_reaped()
    {
        await Proxy.StartInitAsync(HostInit);
        await Proxy.TaskExitedAsync(new TaskExit(1, 0));
        await Proxy.ReapedAsync(1);

        await Refused(() => Proxy.StartInitAsync(HostInit + 1));
    }

    [Fact]
    public async Task A_tick_that_lists_a_thread_twice_is_refused()
    {
        var error = await Assert.ThrowsAsync<RemoteInvocationException>(() => Proxy.VcpuTickAsync(new VcpuTick(1, [Runs(1, sliceMs: 20), Waits(1, waitMs: 5)])));
        Assert.Equal(-32000, error.ErrorCode);
    }

    // The run policies (docs/contract/sched.md, "Run policies"). A tick's facts: RunNs is cumulative, SliceNs how
    // long a running thread has run without a break, WaitNs how long a waiting one has waited. Quantum: 10 ms.
    private const long Ms = 1_000_000;

    private static VcpuThread Runs(int vtid, long sliceMs, int nice = 0, long runMs = 0) =>
        new(vtid, nice, VcpuStanding.Running, runMs * Ms, sliceMs * Ms, 0);

    private static VcpuThread Waits(int vtid, long waitMs, VcpuStanding why = VcpuStanding.New, int nice = 0, long runMs = 0) =>
        new(vtid, nice, why, runMs * Ms, 0, waitMs * Ms);

    [Fact]
    public async Task An_unknown_run_policy_or_a_quantum_below_1_ns_is_refused_and_changes_nothing()
    {
        await Proxy.ConfigureAsync(new SchedConfig(2, "fifo"));

        var unknown = await Assert.ThrowsAsync<RemoteInvocationException>(() => Proxy.ConfigureAsync(new SchedConfig(3, "lottery")));
        Assert.Equal(-32000, unknown.ErrorCode);
        var zero = await Assert.ThrowsAsync<RemoteInvocationException>(() => Proxy.ConfigureAsync(new SchedConfig(3, "fifo", QuantumNs: 0)));
        Assert.Equal(-32000, zero.ErrorCode);

        Assert.Equal(2, await Proxy.CpusAsync());
        // Still fifo: a thread far past any quantum is not preempted.
        var decision = await Proxy.VcpuTickAsync(new VcpuTick(1, [Runs(1, sliceMs: 500), Waits(2, waitMs: 500)]));
        Assert.Empty(decision.Preempt);
    }

    [Fact]
    public async Task A_checkpoint_keeps_the_run_policy_and_its_quantum()
    {
        // sched/configure came before the checkpoint, so a restored server is not sent it again.
        await Proxy.ConfigureAsync(new SchedConfig(1, "fifo", QuantumNs: 10 * Ms));
        await Proxy.StartInitAsync(HostInit);
        var fifo = await Successor();
        await fifo.RestoreAsync((await Proxy.CheckpointAsync())!);
        Assert.Empty((await fifo.VcpuTickAsync(new VcpuTick(1, [Runs(1, sliceMs: 500), Waits(2, waitMs: 500)]))).Preempt);

        await Proxy.ConfigureAsync(new SchedConfig(1, "round-robin", QuantumNs: 100 * Ms));
        var slow = await Successor();
        await slow.RestoreAsync((await Proxy.CheckpointAsync())!);
        Assert.Empty((await slow.VcpuTickAsync(new VcpuTick(1, [Runs(1, sliceMs: 50), Waits(2, waitMs: 50)]))).Preempt);
        Assert.Equal([1], (await slow.VcpuTickAsync(new VcpuTick(1, [Runs(1, sliceMs: 120), Waits(2, waitMs: 120)]))).Preempt);
    }

    [Fact]
    public async Task Round_robin_preempts_a_thread_past_its_quantum_scaled_by_nice_and_queues_waiters_in_arrival_order()
    {
        await Proxy.ConfigureAsync(new SchedConfig(2, "round-robin", QuantumNs: 10 * Ms));
        await Threads(5);

        // 1 has used its quantum, 2 has not: one waiting thread, so at most one preemption. Waiters that arrive at
        // the same tick queue longest-waiting first.
        var first = await Proxy.VcpuTickAsync(new VcpuTick(2, [Runs(1, sliceMs: 12), Runs(2, sliceMs: 4), Waits(3, waitMs: 1), Waits(4, waitMs: 3)]));
        Assert.Equal([1], first.Preempt);
        Assert.Equal([4, 3], first.Next);

        // A nice 5 thread's quantum is about a third of nice 0's (load weight 335 / 1024): 4 ms is past it. The nice
        // value is the one Sched keeps, not the tick's (the host's). A waiter that arrives later queues behind those
        // already waiting, however long it has waited.
        await Renice(1, 5);
        var second = await Proxy.VcpuTickAsync(new VcpuTick(2, [Runs(1, sliceMs: 4, nice: 0), Runs(2, sliceMs: 4), Waits(3, waitMs: 6), Waits(4, waitMs: 8), Waits(5, waitMs: 50)]));
        Assert.Equal([1], second.Preempt);
        Assert.Equal([4, 3, 5], second.Next);

        // Nobody waits: nobody is preempted.
        Assert.Empty((await Proxy.VcpuTickAsync(new VcpuTick(2, [Runs(1, sliceMs: 100), Runs(2, sliceMs: 100)]))).Preempt);
    }

    [Fact]
    public async Task Fifo_never_preempts_and_an_overcommitted_thread_goes_first()
    {
        await Proxy.ConfigureAsync(new SchedConfig(1, "fifo", QuantumNs: 10 * Ms));

        var first = await Proxy.VcpuTickAsync(new VcpuTick(1, [Runs(1, sliceMs: 1000), Waits(2, waitMs: 900), Waits(3, waitMs: 50)]));
        Assert.Empty(first.Preempt);
        Assert.Equal([2, 3], first.Next);

        var second = await Proxy.VcpuTickAsync(new VcpuTick(1, [Runs(1, sliceMs: 1005), Waits(2, waitMs: 905), Waits(3, waitMs: 55), Waits(4, waitMs: 1, VcpuStanding.Overcommitted)]));
        Assert.Empty(second.Preempt);
        Assert.Equal([4, 2, 3], second.Next);
    }

    [Fact]
    public async Task Fair_share_runs_the_thread_furthest_behind_in_cpu_time_weighted_by_nice()
    {
        await Proxy.ConfigureAsync(new SchedConfig(1, "fair-share", QuantumNs: 10 * Ms));
        await Threads(3);
        await Renice(3, 5);

        // The first tick that sees a thread is where its account starts: nobody is behind yet, so the waiters go
        // longest-waiting first and nobody is preempted.
        var first = await Proxy.VcpuTickAsync(new VcpuTick(1, [Runs(1, sliceMs: 1, nice: 0, runMs: 100), Waits(2, waitMs: 1, nice: 0, runMs: 100), Waits(3, waitMs: 5, nice: 5, runMs: 100)]));
        Assert.Empty(first.Preempt);
        Assert.Equal([3, 2], first.Next);

        // Since then 1 ran 8 ms, 2 (nice 0) 2 ms and 3 (nice 5) 1 ms: in virtual time 3's 1 ms counts about 3 ms
        // (1024 / 335), more than 2's 2 ms, so 2 runs next although 3 ran less and waited first; and 1, which has run
        // past half a quantum and is 6 ms of virtual time ahead of 2 (over half a quantum), gives its vCPU up before
        // its quantum is used (round-robin would keep it).
        var second = await Proxy.VcpuTickAsync(new VcpuTick(1, [Runs(1, sliceMs: 9, nice: 0, runMs: 108), Waits(2, waitMs: 10, nice: 0, runMs: 102), Waits(3, waitMs: 14, nice: 5, runMs: 101)]));
        Assert.Equal([1], second.Preempt);
        Assert.Equal([2, 3], second.Next);

        // A thread that has run less than half a quantum keeps its vCPU this tick, whoever is behind.
        var third = await Proxy.VcpuTickAsync(new VcpuTick(1, [Runs(1, sliceMs: 2, nice: 0, runMs: 110), Waits(2, waitMs: 12, nice: 0, runMs: 102), Waits(3, waitMs: 16, nice: 5, runMs: 101)]));
        Assert.Empty(third.Preempt);
        Assert.Equal([2, 3], third.Next);
    }

    /// <summary>Init and its children up to pid <paramref name="last"/>, each a thread Sched keeps attributes for.</summary>
    private async Task Threads(int last)
    {
        await Proxy.StartInitAsync(HostInit);
        for (int pid = 2; pid <= last; pid++) await Fork(creator: 1);
    }

    /// <summary>Thread <paramref name="vtid"/>'s nice value, as a root guest's setpriority sets it.</summary>
    private async Task Renice(int vtid, int nice)
    {
        var root = new TaskCreds(vtid, 0, 0, true, 0, 0);
        Assert.Equal(0, (await Proxy.SetPriorityAsync(new PriorityRequest(root, 0, vtid, nice, [root]))).Result);
    }

    // Linux 6.18's text for host task 4101 (pid 2 here), traced by the kernel: its parent 4000, its group and session 4101.
    private const string HostStat = "4101 (sh) t 4000 4101 4101 34816 4101 4194560 118 0 0 0 0 0 0 0 20 0 1 0 713 2678784 224 18446744073709551615\n";
    private const string HostStatus = "Name:\tsh\nState:\tt (tracing stop)\nTgid:\t4101\nNgid:\t0\nPid:\t4101\nPPid:\t4000\nTracerPid:\t3999\n"
        + "Uid:\t0\t0\t0\t0\nNStgid:\t4101\nNSpid:\t4101\nNSpgid:\t4101\nNSsid:\t4101\nThreads:\t1\n";

    [Fact]
    public async Task Proc_stat_shows_the_guests_pids_and_a_task_held_by_the_kernel_as_running()
    {
        await Proxy.StartInitAsync(HostInit);
        await Fork(creator: 1);                                          // 2, host 4101
        await Proxy.GroupChangedAsync(new GroupChange(2, 2, NewSession: true));

        var stat = await Proxy.ProcTextAsync(new ProcTextRequest(2, 2, "stat", HostStat));

        Assert.Equal(0, stat.Errno);
        Assert.Equal("2 (sh) R 1 2 2 34816 2 4194560 118 0 0 0 0 0 0 0 20 0 1 0 713 2678784 224 18446744073709551615\n", stat.Text);
        var stopped = await Proxy.ProcTextAsync(new ProcTextRequest(2, 2, "stat", HostStat, Stopped: true));
        Assert.StartsWith("2 (sh) T 1 ", stopped.Text);
    }

    [Fact]
    public async Task Proc_stat_takes_the_last_parenthesis_as_the_end_of_the_name_and_hides_a_host_foreground_group()
    {
        await Proxy.StartInitAsync(HostInit);
        await Fork(creator: 1);

        var stat = await Proxy.ProcTextAsync(new ProcTextRequest(2, 2, "stat", "4101 (a) 4101 (b) S 4000 4000 4000 34816 7777 0\n"));

        Assert.Equal("2 (a) 4101 (b) S 1 1 1 34816 -1 0\n", stat.Text);
    }

    [Fact]
    public async Task Proc_status_shows_the_guests_ids_no_tracer_and_a_job_control_stop()
    {
        await Proxy.StartInitAsync(HostInit);
        await Fork(creator: 1);
        await Proxy.GroupChangedAsync(new GroupChange(2, 2, NewSession: true));

        var status = await Proxy.ProcTextAsync(new ProcTextRequest(2, 2, "status", HostStatus));

        Assert.Equal("Name:\tsh\nState:\tR (running)\nTgid:\t2\nNgid:\t0\nPid:\t2\nPPid:\t1\nTracerPid:\t0\n"
            + "Uid:\t0\t0\t0\t0\nNStgid:\t2\nNSpid:\t2\nNSpgid:\t2\nNSsid:\t2\nThreads:\t1\n", status.Text);
        var stopped = await Proxy.ProcTextAsync(new ProcTextRequest(2, 2, "status", HostStatus, Stopped: true));
        Assert.Contains("State:\tT (stopped)\n", stopped.Text);
    }

    [Fact]
    public async Task Proc_status_of_a_thread_names_the_thread_and_its_process_and_a_numa_group_by_guest_tid()
    {
        await Proxy.StartInitAsync(HostInit);
        await Fork(creator: 1);                                          // 2, host 4101
        await Clone(creator: 2);                                         // tid 3 in 2, host 4202
        const string host = "Tgid:\t4101\nNgid:\t4202\nPid:\t4202\nPPid:\t4000\nNSpid:\t4202\n";

        var status = await Proxy.ProcTextAsync(new ProcTextRequest(2, 3, "status", host));

        Assert.Equal("Tgid:\t2\nNgid:\t3\nPid:\t3\nPPid:\t1\nNSpid:\t3\n", status.Text);
        var hostGroup = await Proxy.ProcTextAsync(new ProcTextRequest(2, 3, "status", "Ngid:\t9999\n"));
        Assert.Equal("Ngid:\t0\n", hostGroup.Text); // a task the guest cannot see is 0, as in a pid namespace
    }

    [Fact]
    public async Task Proc_stat_shows_the_scheduling_attributes_sched_keeps_not_the_hosts()
    {
        await Proxy.StartInitAsync(HostInit);
        await Fork(creator: 1);                                          // 2, host 4101
        var root = new TaskCreds(2, 0, 0, true, 0, 0);
        await Proxy.SetPriorityAsync(new PriorityRequest(root, SchedAbi.PRIO_PROCESS, 0, -5, [root]));
        // Linux 6.18's whole line (52 fields): priority 20 and nice 0 at 18 and 19, rt_priority and policy 0 at 40 and 41.
        const string host = "4101 (sh) S 4000 4101 4101 34816 4101 4194560 118 0 0 0 0 0 0 0 20 0 1 0 713 2678784 224 "
            + "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n";

        var stat = (await Proxy.ProcTextAsync(new ProcTextRequest(2, 2, "stat", host))).Text.TrimEnd('\n').Split(' ');

        Assert.Equal(52, stat.Length);
        Assert.Equal(("15", "-5", "0", "0"), (stat[17], stat[18], stat[39], stat[40]));
        // A real-time class leaves the nice value as it was (__setscheduler_params sets it for a fair policy only).
        await Proxy.SetAttrAsync(new AttrRequest(root, 0, new SchedAttr(SchedAbi.SCHED_FIFO, 0, 0, 10), false, [root]));
        stat = (await Proxy.ProcTextAsync(new ProcTextRequest(2, 2, "stat", host))).Text.TrimEnd('\n').Split(' ');
        Assert.Equal(("-11", "-5", "10", "1"), (stat[17], stat[18], stat[39], stat[40]));
    }

    [Fact]
    public async Task Proc_text_of_a_task_sched_does_not_know_is_ESRCH_and_of_another_file_ENOENT()
    {
        await Proxy.StartInitAsync(HostInit);

        Assert.Equal(Errno.ESRCH, (await Proxy.ProcTextAsync(new ProcTextRequest(7, 7, "stat", HostStat))).Errno);
        Assert.Equal(Errno.ESRCH, (await Proxy.ProcTextAsync(new ProcTextRequest(1, 9, "stat", HostStat))).Errno);
        Assert.Equal(Errno.ENOENT, (await Proxy.ProcTextAsync(new ProcTextRequest(1, 1, "maps", ""))).Errno);
    }

    private Task<TaskGrant> Fork(int creator) =>
        Proxy.TaskCreatedAsync(new TaskCreation(creator, HostInit + 100 + creator, CloneKind.Process, CloneParent: false));

    private Task<TaskGrant> Clone(int creator) =>
        Proxy.TaskCreatedAsync(new TaskCreation(creator, HostInit + 200 + creator, CloneKind.Thread, CloneParent: false));
}
