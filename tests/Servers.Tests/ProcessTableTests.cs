using StreamJsonRpc;
using UmlMicro.Contracts.Linux;
using UmlMicro.Contracts.Servers;
using UmlMicro.Servers.Sched;

namespace UmlMicro.ServersTests;

public sealed class ProcessTableTests
{
    private readonly PidNamespace pids = new();
    private readonly ProcessTable table;

    public ProcessTableTests()
    {
        table = new ProcessTable(pids);
        table.StartInit(hostPid: 500);
    }

    [Fact]
    public void Init_leads_its_own_group_and_session()
    {
        Assert.True(table.TryGetProcess(1, out var init));
        Assert.Equal((0, 1, 1, 500), (init.ParentPid, init.Pgid, init.Sid, init.HostPid));
        Assert.Throws<LocalRpcException>(() => table.StartInit(hostPid: 501));
    }

    [Fact]
    public void A_child_inherits_group_and_session_and_keeps_its_host_tid_for_traces()
    {
        table.ChangeGroup(new GroupChange(1, 0, NewSession: true));
        var child = Fork(1, hostTid: 777);

        Assert.Equal((1, 1, 1), (child.Process.ParentPid, child.Process.Pgid, child.Process.Sid));
        Assert.Equal(777, child.HostTid);
    }

    [Fact]
    public void The_number_the_hosts_namespace_gave_is_granted_when_free_and_the_next_one_otherwise()
    {
        var child = table.Create(new TaskCreation(1, HostTid: 9001, CloneKind.Process, CloneParent: false, Pid: 40));
        var thread = table.Create(new TaskCreation(40, HostTid: 9002, CloneKind.Thread, CloneParent: false, Pid: 41));
        Assert.Equal((40, 41), (child.Tid, thread.Tid));

        // Guest pid 1 holds 1 (the namespace's own init, never a guest task, has it on the host): the next free one.
        var clash = table.Create(new TaskCreation(1, HostTid: 9003, CloneKind.Process, CloneParent: false, Pid: 1));
        Assert.Equal(42, clash.Tid);
    }

    [Fact]
    public void Numbers_set_aside_are_the_next_ones_held_until_a_task_takes_one_or_they_are_given_back()
    {
        var ahead = table.Reserve(4);
        Assert.Equal([2, 3, 4, 5], ahead);
        Assert.All(ahead, nr => Assert.True(pids.IsTaken(nr)));

        // Nobody else gets them: a task the host numbered otherwise gets the next free number after them.
        var other = table.Create(new TaskCreation(1, HostTid: 9000, CloneKind.Process, CloneParent: false));
        Assert.Equal(6, other.Tid);

        var child = table.Start(new TaskCreation(1, HostTid: 9001, CloneKind.Process, CloneParent: false, Pid: 3));
        var thread = table.Start(new TaskCreation(3, HostTid: 9002, CloneKind.Thread, CloneParent: false, Pid: 4));
        Assert.Equal((3, 3, 1), (child.Tid, child.Process.Pid, child.Process.ParentPid));
        Assert.Equal((4, 3), (thread.Tid, thread.Process.Pid));
        Assert.Equal([2, 5], table.Reserved);

        // A number not set aside (or already used) cannot be started with.
        Assert.Throws<LocalRpcException>(() => table.Start(new TaskCreation(1, HostTid: 9003, CloneKind.Process, CloneParent: false, Pid: 3)));
        Assert.Throws<LocalRpcException>(() => table.Start(new TaskCreation(1, HostTid: 9003, CloneKind.Process, CloneParent: false, Pid: 7)));

        table.Release([2, 5]);
        Assert.False(pids.IsTaken(2));
        Assert.False(pids.IsTaken(5));
        Assert.Empty(table.Reserved);
        Assert.Throws<LocalRpcException>(() => table.Release([2]));

        // A thread's number is freed when it leaves, as any other.
        table.Exit(4, 0);
        Assert.False(pids.IsTaken(4));
    }

    [Fact]
    public void A_thread_leaving_frees_its_tid_but_the_leaders_number_waits_for_the_reap()
    {
        var child = Fork(1);
        var thread = Clone(child.Tid);

        table.Exit(thread.Tid, 0);
        Assert.False(pids.IsTaken(thread.Tid));
        table.Exit(child.Tid, 0x0100);

        Assert.True(table.TryGetProcess(child.Tid, out var zombie));
        Assert.True(zombie.IsZombie);
        Assert.Equal(0x0100, zombie.ExitStatus);
        Assert.True(pids.IsTaken(child.Tid));
        table.Reap(child.Tid);
        Assert.False(pids.IsTaken(child.Tid));
        Assert.DoesNotContain(child.Tid, Init.Children);
    }

    [Fact]
    public void The_exit_status_is_the_leaders_even_when_a_thread_exits_last()
    {
        var child = Fork(1);
        var thread = Clone(child.Tid);

        table.Exit(child.Tid, 0x0300);
        table.Exit(thread.Tid, 0);

        Assert.True(table.TryGetProcess(child.Tid, out var zombie));
        Assert.Equal(0x0300, zombie.ExitStatus);
    }

    [Fact]
    public void A_session_outliving_its_leader_keeps_its_number()
    {
        var leader = Fork(1);
        table.ChangeGroup(new GroupChange(leader.Tid, 0, NewSession: true));
        var member = Fork(leader.Tid);

        table.Exit(leader.Tid, 0);
        table.Reap(leader.Tid);

        Assert.True(pids.IsTaken(leader.Tid));
        table.Exit(member.Tid, 0);
        table.Reap(member.Tid);
        Assert.False(pids.IsTaken(leader.Tid));
    }

    [Fact]
    public void Setpgid_joins_an_existing_group_only()
    {
        var a = Fork(1);
        var b = Fork(1);
        table.ChangeGroup(new GroupChange(a.Tid, a.Tid, NewSession: false));

        table.ChangeGroup(new GroupChange(b.Tid, a.Tid, NewSession: false));

        Assert.Equal(a.Tid, b.Process.Pgid);
        Assert.Throws<LocalRpcException>(() => table.ChangeGroup(new GroupChange(b.Tid, 999, NewSession: false)));
    }

    [Fact]
    public void Orphans_go_to_init_and_zombie_orphans_too()
    {
        var parent = Fork(1);
        var running = Fork(parent.Tid);
        var dead = Fork(parent.Tid);
        table.Exit(dead.Tid, 0);

        table.Exit(parent.Tid, 0);

        Assert.Equal(1, running.Process.ParentPid);
        Assert.Equal(1, dead.Process.ParentPid);
        Assert.Contains(running.Tid, Init.Children);
        Assert.Contains(dead.Tid, Init.Children);
    }

    [Fact]
    public void Without_a_living_init_orphans_have_no_parent()
    {
        var child = Fork(1);
        var grandchild = Fork(child.Tid);

        table.Exit(1, 0);
        table.Exit(child.Tid, 0);

        Assert.Equal(0, grandchild.Process.ParentPid);
    }

    [Fact]
    public void Exec_by_a_sibling_after_the_leader_left_revives_the_leader_ids()
    {
        var child = Fork(1, hostTid: 900);
        var thread = Clone(child.Tid);
        table.Exit(child.Tid, 0);

        table.Exec(child.Tid);

        Assert.True(table.TryGetThread(child.Tid, out var leader));
        Assert.Equal(900, leader.HostTid);
        Assert.False(table.TryGetThread(thread.Tid, out _));
        Assert.False(pids.IsTaken(thread.Tid));
        Assert.Null(child.Process.ExitStatus);
    }

    [Fact]
    public void Clone_parent_from_init_is_refused()
    {
        Assert.Throws<LocalRpcException>(() => table.Create(new TaskCreation(1, 600, CloneKind.Process, CloneParent: true)));
    }

    [Fact]
    public void Parent_of_an_unknown_pid_is_minus_esrch()
    {
        Assert.Equal(-Errno.ESRCH, table.ParentOf(77));
    }

    [Fact]
    public void A_running_process_cannot_be_reaped()
    {
        var child = Fork(1);

        Assert.Throws<LocalRpcException>(() => table.Reap(child.Tid));
    }

    [Fact]
    public void An_exhausted_pid_space_is_an_error_not_a_wrong_grant()
    {
        var small = new ProcessTable(new PidNamespace(pidMax: 3, reserved: 1));
        small.StartInit(hostPid: 1);
        small.Create(new TaskCreation(1, 2, CloneKind.Process, CloneParent: false));

        Assert.Throws<LocalRpcException>(() => small.Create(new TaskCreation(1, 3, CloneKind.Thread, CloneParent: false)));
    }

    private GuestProcess Init => table.TryGetProcess(1, out var init) ? init : throw new InvalidOperationException("no init");

    private GuestThread Fork(int creator, int hostTid = 600) =>
        table.Create(new TaskCreation(creator, hostTid, CloneKind.Process, CloneParent: false));

    private GuestThread Clone(int creator) =>
        table.Create(new TaskCreation(creator, 700, CloneKind.Thread, CloneParent: false));
}
