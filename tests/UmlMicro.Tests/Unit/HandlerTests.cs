using Moq;
using UmlMicro.Contracts.Linux;
using UmlMicro.Contracts.Servers;
using UmlMicro.Contracts.Syscalls;
using UmlMicro.Supervisor;
using UmlMicro.Supervisor.Guest;
using UmlMicro.Supervisor.Observability;
using UmlMicro.Supervisor.Ptrace;
using UmlMicro.Supervisor.Servers;
using UmlMicro.Supervisor.Syscalls;

namespace UmlMicro.Tests.Unit;

/// <summary>Syscall handlers against mocked server contracts: what reaches the host and what the servers are asked.</summary>
public class HandlerTests
{
    private readonly Mock<ISchedServer> _sched = new(MockBehavior.Strict);
    private readonly Mock<IVfsServer> _vfs = new(MockBehavior.Strict);
    private readonly Mock<IMmServer> _mm = new(MockBehavior.Strict);
    private readonly Kernel _kernel;
    private readonly GuestTask _task = new(hostTid: 4242) { HostTgid = 4242, Vpid = 3, Vtid = 3, Started = true };

    public HandlerTests()
    {
        var stats = new KernelStats();
        _kernel = new Kernel(
            ServerLink<IVfsServer>.InProcess(Server.Vfs, "vfs", _vfs.Object, stats),
            ServerLink<IMmServer>.InProcess(Server.Mm, "mm", _mm.Object, stats),
            ServerLink<ISchedServer>.InProcess(Server.Sched, "sched", _sched.Object, stats),
            new KernelIdentity("Linux", "h", "6.1-umlmicro", "#1", "x86_64", "(none)"), cpus: 2, stats, trace: null);
        // Host pids (the supervisor's) differ from pids in the guest's namespace, which is what the guest's calls use.
        _kernel.Pids.Add(1, 91000, 1000);
        _kernel.Pids.Add(3, 4242, 4242);
        _kernel.Pids.Add(7, 95555, 5555);
    }

    /// <summary>Runs the entry handler of <paramref name="name"/> as the tracer would, and returns the call.</summary>
    private SyscallCall Enter(string name, params long[] args)
    {
        var info = SyscallTable.Find(name)!;
        var regs = new UserRegs { OrigRax = (ulong)info.Number };
        for (int i = 0; i < args.Length; i++) regs.SetArg(i, (ulong)args[i]);
        var call = _task.Call;
        var raw = new ulong[6];
        for (int i = 0; i < 6; i++) raw[i] = regs.Arg(i);
        call.Begin(_kernel, _task, info, raw);
        call.UseRegs(regs);
        try
        {
            _kernel.Router.Handler(info.Number)!(call);
        }
        catch (SyscallError e)
        {
            call.Fail(e.Errno);
        }
        return call;
    }

    [Fact]
    public void Getpid_and_gettid_come_from_the_cached_grant_without_a_server_round_trip()
    {
        Assert.Equal(3, Enter("getpid").Emulated);
        Assert.Equal(3, Enter("gettid").Emulated);
        _sched.VerifyNoOtherCalls();
    }

    [Fact]
    public void Getppid_asks_sched_once_until_a_task_ends()
    {
        _sched.Setup(s => s.ParentAsync(3)).ReturnsAsync(1);
        Assert.Equal(1, Enter("getppid").Emulated);
        Assert.Equal(1, Enter("getppid").Emulated);
        _sched.Verify(s => s.ParentAsync(3), Times.Once);

        // The parent ended and Sched reparented the process: the kept answer is gone.
        _kernel.Lineage.Invalidate();
        _sched.Setup(s => s.ParentAsync(3)).ReturnsAsync(7);
        Assert.Equal(7, Enter("getppid").Emulated);
        _sched.Verify(s => s.ParentAsync(3), Times.Exactly(2));
    }

    [Fact]
    public void Getsid_is_asked_again_after_setsid()
    {
        _sched.Setup(s => s.ProcessesAsync()).ReturnsAsync([new ProcessFacts(3, 4242, 1, 1, 1, [])]);
        Assert.Equal(1, Enter("getsid", 0).Emulated);
        Assert.Equal(1, Enter("getsid", 3).Emulated);
        _sched.Verify(s => s.ProcessesAsync(), Times.Once);

        _sched.Setup(s => s.GroupChangedAsync(new GroupChange(3, 3, true))).Returns(Task.CompletedTask);
        var setsid = Enter("setsid");
        setsid.Result = 3;
        setsid.Exit!(setsid);
        _sched.Setup(s => s.ProcessesAsync()).ReturnsAsync([new ProcessFacts(3, 4242, 1, 3, 3, [])]);
        Assert.Equal(3, Enter("getsid", 0).Emulated);
        _sched.Verify(s => s.ProcessesAsync(), Times.Exactly(2));
    }

    [Fact]
    public void Kill_of_a_guest_pid_reaches_the_host_translated()
    {
        var call = Enter("kill", 7, Signals.SIGTERM);
        Assert.Null(call.Emulated);
        Assert.Equal(5555ul, call.Regs.Arg(0));
        Assert.True(call.ArgsChanged);
    }

    [Fact]
    public void Kill_of_a_process_group_is_translated_and_stays_negative()
    {
        var call = Enter("kill", -7, Signals.SIGTERM);
        Assert.Equal(-5555L, (long)call.Regs.Arg(0));
    }

    [Fact]
    public void A_pid_the_guest_was_never_granted_reaches_the_host_only_as_a_pid_no_process_has()
    {
        // The host then checks the other arguments first and says ESRCH (ECHILD for wait) where Linux would.
        const ulong none = (ulong)PidTranslation.NoSuchPid;
        var kill = Enter("kill", 12345, Signals.SIGKILL);
        Assert.Null(kill.Emulated);
        Assert.Equal(none, kill.Regs.Arg(0));
        Assert.Equal(-(long)none, (long)Enter("kill", -12345, Signals.SIGKILL).Regs.Arg(0));
        var tgkill = Enter("tgkill", 12345, 12345, Signals.SIGKILL);
        Assert.Equal((none, none), (tgkill.Regs.Arg(0), tgkill.Regs.Arg(1)));
        Assert.Equal(none, Enter("wait4", 999, 0, 0, 0).Regs.Arg(0));
        Assert.Equal(-Errno.ESRCH, Enter("sched_getaffinity", 999, 8, 0).Emulated);
    }

    [Fact]
    public void A_negative_pid_is_a_group_only_for_kill_and_wait4()
    {
        // tkill(-7) is EINVAL on Linux, sched_getparam(-7) too: the host says so; a negative pid names nothing there.
        var tkill = Enter("tkill", -7, Signals.SIGTERM);
        Assert.Null(tkill.Emulated);
        Assert.False(tkill.ArgsChanged);
        Assert.Equal(-5555L, (long)Enter("wait4", -7, 0, 0, 0).Regs.Arg(0));
        Assert.Equal(-Errno.ESRCH, Enter("kill", int.MinValue, 0).Emulated);
    }

    [Fact]
    public void Wait4_for_any_child_is_passed_untouched()
    {
        var any = Enter("wait4", -1, 0, 0, 0);
        Assert.Null(any.Emulated);
        Assert.False(any.ArgsChanged);
    }

    [Fact]
    public void Sched_getscheduler_answers_from_scheds_record_and_never_reaches_the_host()
    {
        _sched.Setup(s => s.GetAttrAsync(7)).ReturnsAsync(new SchedAttr(SchedAbi.SCHED_RR, SchedAbi.SCHED_FLAG_RESET_ON_FORK, 0, 5));
        _sched.Setup(s => s.GetAttrAsync(8)).ReturnsAsync((SchedAttr?)null);

        Assert.Equal(SchedAbi.SCHED_RR | SchedAbi.SCHED_RESET_ON_FORK, Enter("sched_getscheduler", 7).Emulated);
        Assert.Equal(-Errno.ESRCH, Enter("sched_getscheduler", 8).Emulated);
        // Linux checks the pid's sign before it looks anything up: Sched is not asked (the mock is strict).
        Assert.Equal(-Errno.EINVAL, Enter("sched_getscheduler", -1).Emulated);
        Assert.Equal(-Errno.EINVAL, Enter("sched_setattr", 0, 0x1000, 1).Emulated);
    }

    [Fact]
    public void Namespaces_cannot_be_created()
    {
        Assert.Equal(-Errno.EPERM, Enter("clone", (long)LinuxFlags.CLONE_NEWPID, 0, 0, 0, 0).Emulated);
    }

    [Fact]
    public void A_thread_clone_is_remembered_until_its_ptrace_event()
    {
        ulong flags = LinuxFlags.CLONE_VM | LinuxFlags.CLONE_THREAD | LinuxFlags.CLONE_PARENT_SETTID;
        var call = Enter("clone", (long)flags, 0, 0x1000, 0x2000, 0);
        Assert.Null(call.Emulated);
        Assert.Equal(new PendingClone(flags, 0x1000, 0x2000), _task.Clone);
    }

    /// <summary>A kernel under --max-procs <paramref name="max"/> whose guest is pid 1 and the calling task's process (pid 3).</summary>
    private Kernel LimitedKernel(int max)
    {
        var stats = new KernelStats();
        var k = new Kernel(
            ServerLink<IVfsServer>.InProcess(Server.Vfs, "vfs", _vfs.Object, stats),
            ServerLink<IMmServer>.InProcess(Server.Mm, "mm", _mm.Object, stats),
            ServerLink<ISchedServer>.InProcess(Server.Sched, "sched", _sched.Object, stats),
            new KernelIdentity("Linux", "h", "6.1-umlmicro", "#1", "x86_64", "(none)"), cpus: 2, stats, trace: null, maxProcs: max);
        k.Tasks.Add(new GuestTask(hostTid: 1000) { HostTgid = 1000, Vpid = 1, Vtid = 1, Started = true });
        k.Tasks.Add(_task);
        k.Processes.Started(1);
        k.Processes.Started(3);
        return k;
    }

    private SyscallCall EnterOn(Kernel k, string name, params long[] args)
    {
        var info = SyscallTable.Find(name)!;
        var raw = new ulong[6];
        for (int i = 0; i < args.Length; i++) raw[i] = (ulong)args[i];
        var call = _task.Call;
        call.Begin(k, _task, info, raw);
        try
        {
            k.Router.Handler(info.Number)!(call);
        }
        catch (SyscallError e)
        {
            call.Fail(e.Errno);
        }
        return call;
    }

    [Theory]
    [InlineData("fork")]
    [InlineData("vfork")]
    [InlineData("clone")]
    public void A_process_beyond_max_procs_is_eagain_before_the_host_runs_the_call(string name)
    {
        var k = LimitedKernel(2);

        var call = EnterOn(k, name, name == "clone" ? 17 /* SIGCHLD: a process */ : 0);

        Assert.Equal(-Errno.EAGAIN, call.Emulated);
        Assert.Null(_task.Clone);
    }

    [Fact]
    public void A_thread_is_not_a_process_and_is_never_refused()
    {
        var k = LimitedKernel(2);
        ulong flags = LinuxFlags.CLONE_VM | LinuxFlags.CLONE_THREAD | 0x800 /* SIGHAND */;

        var call = EnterOn(k, "clone", (long)flags, 0, 0, 0, 0);

        Assert.Null(call.Emulated);
        Assert.Equal(2, k.Processes.Count);
    }

    [Fact]
    public void A_fork_holds_one_place_across_a_restart_and_gives_it_back_when_the_host_refuses_it()
    {
        var k = LimitedKernel(3);

        var first = EnterOn(k, "fork");
        Assert.Null(first.Emulated);
        Assert.Equal(3, k.Processes.Count);
        var restarted = EnterOn(k, "fork"); // ERESTARTNOINTR after a signal handler: the same fork again
        Assert.Null(restarted.Emulated);
        Assert.Equal(3, k.Processes.Count);

        restarted.Result = -Errno.ENOMEM;
        restarted.Exit!(restarted);

        Assert.Equal(2, k.Processes.Count);
        Assert.Null(EnterOn(k, "fork").Emulated);
    }

    [Fact]
    public void A_reaped_zombie_frees_its_place()
    {
        var k = LimitedKernel(2);
        Assert.Equal(-Errno.EAGAIN, EnterOn(k, "fork").Emulated);

        k.Processes.Reaped(3);

        Assert.Null(EnterOn(k, "fork").Emulated);
    }

    [Fact]
    public void Without_max_procs_nothing_is_counted_and_fork_has_no_exit_handler()
    {
        var call = Enter("fork");

        Assert.Null(call.Emulated);
        Assert.Null(call.Exit);
        Assert.Equal(0, _kernel.Processes.Count);
    }
}
