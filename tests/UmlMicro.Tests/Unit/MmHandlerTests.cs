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

/// <summary>Memory calls under a limit: what the MM server is asked at entry, what the host gets to run, what is recorded.</summary>
public class MmHandlerTests
{
    private const long Limit = 64L << 20, Refill = 2L << 20; // the refill is a 32nd of the limit
    private const int RW = 3, PRIVATE_ANON = 0x22, MAP_SHARED = 0x01;

    private readonly Mock<IMmServer> _mm = new(MockBehavior.Strict);
    private readonly List<MmEvent> _recorded = [];
    private readonly Kernel _kernel;
    private readonly GuestTask _task = new(hostTid: 4242) { HostTgid = 4242, Vpid = 3, Vtid = 3, Started = true };

    public MmHandlerTests()
    {
        var stats = new KernelStats();
        _kernel = new Kernel(
            ServerLink<IVfsServer>.InProcess(Server.Vfs, "vfs", new Mock<IVfsServer>(MockBehavior.Strict).Object, stats),
            ServerLink<IMmServer>.InProcess(Server.Mm, "mm", _mm.Object, stats),
            ServerLink<ISchedServer>.InProcess(Server.Sched, "sched", new Mock<ISchedServer>(MockBehavior.Strict).Object, stats),
            new KernelIdentity("Linux", "h", "6.1-umlmicro", "#1", "x86_64", "(none)"), cpus: 2, stats, trace: null, memoryLimit: Limit);
        _mm.Setup(m => m.RecordAsync(It.IsAny<MmEvent>())).Callback<MmEvent>(_recorded.Add).Returns(Task.CompletedTask);
        // No room to place in unless a test grants some: the host places mmap(NULL) as it would without a kernel.
        _mm.Setup(m => m.WindowAsync(It.IsAny<WindowRequest>())).ReturnsAsync(new PlacementWindow(0, 0));
    }

    /// <summary>MM grants the window (and, for the limit, budget enough for every call of the test).</summary>
    private void Window(ulong start, ulong end)
    {
        _mm.Setup(m => m.WindowAsync(It.IsAny<WindowRequest>())).ReturnsAsync(new PlacementWindow(start, end));
        Grant(true, 0, 32L << 20);
    }

    private const ulong Top = 0x7f0000100000, Bottom = 0x7e0000000000;
    private const long MAP_FIXED_NOREPLACE = 0x100000, EEXIST = 17;

    [Fact]
    public void An_mmap_null_is_placed_top_down_in_the_window_mm_granted_with_one_round_trip_for_many_calls()
    {
        Window(Bottom, Top);
        var first = Enter("mmap", 0, 0x3000, RW, PRIVATE_ANON, -1, 0);
        Assert.Equal(Top - 0x3000, first.Regs.Arg(0));
        Assert.Equal((ulong)(PRIVATE_ANON | MAP_FIXED_NOREPLACE), first.Regs.Arg(3));
        Exit(first, (long)(Top - 0x3000));

        var second = Enter("mmap", 0, 100, 1, 0x02, 7, 0); // a file, one page
        Assert.Equal(Top - 0x4000, second.Regs.Arg(0));
        Exit(second, (long)(Top - 0x4000));

        _mm.Verify(m => m.WindowAsync(It.Is<WindowRequest>(r => r.Vpid == 3 && r.Length == 0x3000 && r.Align == 0x1000)), Times.Once);
        _mm.Verify(m => m.WindowAsync(It.IsAny<WindowRequest>()), Times.Once);
        Assert.Equal([(long)(Top - 0x3000), (long)(Top - 0x4000)], _recorded.Select(e => e.Result));
        Assert.All(_recorded, e => Assert.Equal(0UL, e.Addr)); // recorded as the guest asked, with the address placed
    }

    [Fact]
    public void Unmapped_room_in_the_window_is_used_again_and_large_anonymous_memory_is_aligned_to_2_mib()
    {
        Window(Bottom, Top);
        Exit(Enter("mmap", 0, 0x2000, RW, PRIVATE_ANON, -1, 0), (long)(Top - 0x2000));
        Exit(Enter("munmap", (long)(Top - 0x2000), 0x2000), 0);

        Assert.Equal(Top - 0x1000, Enter("mmap", 0, 0x1000, RW, PRIVATE_ANON, -1, 0).Regs.Arg(0));
        Assert.Equal((Top - 0x1000 - 0x200000) & ~0x1FFFFFUL, Enter("mmap", 0, 0x200000, RW, PRIVATE_ANON, -1, 0).Regs.Arg(0));
    }

    [Fact]
    public void A_placement_the_host_refuses_is_reissued_as_the_guest_asked_and_the_host_places_it()
    {
        Window(Bottom, Top);
        var call = Enter("mmap", 0, 0x1000, RW, PRIVATE_ANON, -1, 0);
        ulong rip = call.Regs.Rip;
        Exit(call, -EEXIST);

        Assert.Equal(rip - 2, call.Regs.Rip); // back over the syscall instruction
        Assert.Equal(call.Info.Number, call.Result); // rax: the call's number again
        Assert.Empty(_recorded);

        var again = Enter("mmap", 0, 0x1000, RW, PRIVATE_ANON, -1, 0);
        Assert.False(again.ArgsChanged); // the re-issued call goes to the host untouched
        Exit(again, 0x7e0000000000);
        Assert.Equal(0x7e0000000000, Assert.Single(_recorded).Result);
    }

    [Fact]
    public void A_fork_asks_mm_for_the_copys_charge_and_fails_with_enomem_when_it_does_not_fit_and_a_thread_never_asks()
    {
        Grant(false, 40L << 20, 0);

        var fork = Enter("fork");
        Assert.Equal(-Errno.ENOMEM, fork.Emulated);
        Assert.Null(_task.Clone);
        _mm.Verify(m => m.ReserveAsync(It.Is<CommitRequest>(r => r.Call.Op == MmOp.Fork && r.Call.Vpid == 3)), Times.Once);

        var thread = Enter("clone", (long)(LinuxFlags.CLONE_VM | LinuxFlags.CLONE_THREAD | LinuxFlags.CLONE_SIGHAND), 0, 0, 0, 0);
        Assert.Null(thread.Emulated);
        _mm.Verify(m => m.ReserveAsync(It.IsAny<CommitRequest>()), Times.Once);
    }

    [Fact]
    public void A_fork_that_fits_settles_its_charge_with_its_record()
    {
        Grant(true, 8L << 20, 8L << 20);

        Exit(Enter("fork"), 7);

        var record = Assert.Single(_recorded);
        Assert.Equal((MmOp.Fork, 8L << 20, 7L), (record.Op, record.Charged, record.Result));
    }

    [Theory]
    [InlineData(0x10000, 0x10)] // MAP_FIXED
    [InlineData(0x10000, 0x100000)] // MAP_FIXED_NOREPLACE
    [InlineData(0x10000, 0)] // a hint: the host honours it where it is free
    [InlineData(0, 0x40)] // MAP_32BIT
    [InlineData(0, 0x40000)] // MAP_HUGETLB
    public void Mappings_whose_address_is_asked_for_or_special_are_not_placed(long addr, int flags)
    {
        Window(Bottom, Top);

        Assert.False(Enter("mmap", addr, 0x1000, RW, PRIVATE_ANON | flags, -1, 0).ArgsChanged);
        _mm.Verify(m => m.WindowAsync(It.IsAny<WindowRequest>()), Times.Never);
    }

    private SyscallCall Enter(string name, params long[] args)
    {
        var info = SyscallTable.Find(name)!;
        var regs = new UserRegs { OrigRax = (ulong)info.Number };
        for (int i = 0; i < args.Length; i++) regs.SetArg(i, (ulong)args[i]);
        var raw = new ulong[6];
        for (int i = 0; i < 6; i++) raw[i] = regs.Arg(i);
        var call = _task.Call;
        call.Begin(_kernel, _task, info, raw);
        call.UseRegs(regs);
        _kernel.Router.Handler(info.Number)!(call);
        return call;
    }

    /// <summary>The host ran the call and it returned <paramref name="result"/>.</summary>
    private static void Exit(SyscallCall call, long result)
    {
        call.Result = result;
        call.Exit?.Invoke(call);
    }

    private void Grant(bool allowed, long charge, long granted) =>
        _mm.Setup(m => m.ReserveAsync(It.IsAny<CommitRequest>())).ReturnsAsync(new CommitReply(allowed, charge, granted));

    [Fact]
    public void An_mmap_the_budget_cannot_cover_asks_the_server_with_the_call_and_a_refill()
    {
        Grant(true, 0x10000, 0x10000 + Refill);

        var call = Enter("mmap", 0, 0x10000, RW, PRIVATE_ANON, -1, 0);
        Exit(call, 0x7f0000000000);

        Assert.Null(call.Emulated);
        _mm.Verify(m => m.ReserveAsync(It.Is<CommitRequest>(r =>
            r.Call.Op == MmOp.Mmap && r.Call.Length == 0x10000 && r.Call.Vpid == 3 && r.Budget == 0 && r.Refill == Refill)), Times.Once);
        Assert.Equal(0x10000, Assert.Single(_recorded).Charged);
    }

    [Fact]
    public void Calls_within_the_granted_budget_need_no_round_trip()
    {
        Grant(true, 0x10000, 0x10000 + Refill);
        Exit(Enter("mmap", 0, 0x10000, RW, PRIVATE_ANON, -1, 0), 0x7f0000000000);

        for (int i = 0; i < 10; i++)
            Exit(Enter("mmap", 0, 0x10000, RW, PRIVATE_ANON, -1, 0), 0x7f0000100000 + i * 0x10000);

        _mm.Verify(m => m.ReserveAsync(It.IsAny<CommitRequest>()), Times.Once);
        Assert.All(_recorded, e => Assert.Equal(0x10000, e.Charged));
    }

    [Fact]
    public void Memory_that_commits_nothing_is_never_asked_about()
    {
        Exit(Enter("mmap", 0, 1L << 30, 1, PRIVATE_ANON, -1, 0), 0x7f0000000000); // read-only
        Exit(Enter("mmap", 0, 1L << 30, RW, MAP_SHARED, 5, 0), 0x7f4000000000); // a shared file
        Exit(Enter("munmap", 0x7f0000000000, 1L << 30), 0);

        _mm.Verify(m => m.ReserveAsync(It.IsAny<CommitRequest>()), Times.Never);
        Assert.Equal(3, _recorded.Count);
    }

    [Fact]
    public void An_mmap_over_the_limit_fails_with_enomem_and_the_host_never_runs_it()
    {
        Grant(false, 600L << 20, 0);

        var call = Enter("mmap", 0, 600L << 20, RW, PRIVATE_ANON, -1, 0);

        Assert.Equal(-Errno.ENOMEM, call.Emulated);
        Assert.Null(call.Exit);
        Assert.Empty(_recorded);
    }

    /// <summary>Runs injected calls by answering them from a list, and keeps what was injected.</summary>
    private sealed class FakeInjector(params long[] results) : ISyscallInjector
    {
        private int _next;
        public List<(long Nr, ulong[] Args)> Injected { get; } = [];

        public long Inject(GuestTask task, long nr, ReadOnlySpan<ulong> args)
        {
            Injected.Add((nr, args.ToArray()));
            return results[_next++];
        }
    }

    private SyscallCall EnterBrk(ulong addr, BrkPlan plan, FakeInjector injector)
    {
        _mm.Setup(m => m.BrkAsync(new BrkRequest(3, addr))).ReturnsAsync(plan);
        _task.Call.Injector = injector;
        return Enter("brk", (long)addr);
    }

    [Fact]
    public void A_brk_growth_is_paid_for_and_carried_out_by_an_anonymous_mapping_injected_at_the_heaps_end()
    {
        Grant(true, 0x3000, 0x3000 + Refill);
        var injector = new FakeInjector(0x555000);

        var call = EnterBrk(0x557123, new BrkPlan(0x555000, 0x557123, 0x555000, 0x558000, 0, 0), injector);

        Assert.Equal(0x557123, call.Emulated);
        var (nr, args) = Assert.Single(injector.Injected);
        Assert.Equal(9L, nr);
        Assert.Equal([0x555000, 0x3000, RW, PRIVATE_ANON | MAP_FIXED_NOREPLACE, ulong.MaxValue, 0], args);
        var e = Assert.Single(_recorded);
        Assert.Equal((MmOp.Brk, 0x557123L, 0x3000L), (e.Op, e.Result, e.Charged));
    }

    [Fact]
    public void A_brk_over_the_limit_returns_the_old_break_and_maps_nothing()
    {
        Grant(false, 100L << 20, 0);
        var injector = new FakeInjector();

        var call = EnterBrk(0x555000 + (100UL << 20), new BrkPlan(0x555000, 0x555000 + (100UL << 20), 0x555000, 0x555000 + (100UL << 20), 0, 0), injector);

        Assert.Equal(0x555000, call.Emulated);
        Assert.Empty(injector.Injected);
        Assert.Empty(_recorded);
    }

    [Fact]
    public void A_growth_the_host_refuses_to_map_leaves_the_old_break_and_gives_its_charge_back()
    {
        Grant(true, 0x1000, 0x1000);
        var plan = new BrkPlan(0x555000, 0x556000, 0x555000, 0x556000, 0, 0);

        Assert.Equal(0x555000, EnterBrk(0x556000, plan, new FakeInjector(-EEXIST)).Emulated);
        Assert.Empty(_recorded);
        Assert.Equal(0x556000, EnterBrk(0x556000, plan, new FakeInjector(0x555000)).Emulated);

        _mm.Verify(m => m.ReserveAsync(It.IsAny<CommitRequest>()), Times.Once); // the refund paid for the second
        Assert.Equal(0x1000, Assert.Single(_recorded).Charged);
    }

    [Fact]
    public void A_brk_shrink_unmaps_the_pages_given_back_and_a_refused_brk_changes_nothing()
    {
        var injector = new FakeInjector(0);

        Assert.Equal(0x556010, EnterBrk(0x556010, new BrkPlan(0x560000, 0x556010, 0, 0, 0x557000, 0x560000), injector).Emulated);
        Assert.Equal(0x556010, EnterBrk(0, new BrkPlan(0x556010, 0x556010, 0, 0, 0, 0), injector).Emulated);

        var (nr, args) = Assert.Single(injector.Injected);
        Assert.Equal(11L, nr);
        Assert.Equal([0x557000UL, 0x9000UL], args);
        Assert.Equal(0x556010, Assert.Single(_recorded).Result);
    }

    [Fact]
    public void A_call_the_host_refused_gives_its_charge_back_to_the_budget()
    {
        Grant(true, 0x10000, 0x10000);
        Exit(Enter("mmap", 0, 0x10000, RW, PRIVATE_ANON, -1, 0), -Errno.ENOMEM);

        Exit(Enter("mmap", 0, 0x10000, RW, PRIVATE_ANON, -1, 0), 0x7f0000000000);

        _mm.Verify(m => m.ReserveAsync(It.IsAny<CommitRequest>()), Times.Once);
        Assert.Equal(0x10000, Assert.Single(_recorded).Charged);
    }

    [Fact]
    public void Without_a_limit_memory_calls_are_only_recorded()
    {
        var stats = new KernelStats();
        var kernel = new Kernel(
            ServerLink<IVfsServer>.InProcess(Server.Vfs, "vfs", new Mock<IVfsServer>(MockBehavior.Strict).Object, stats),
            ServerLink<IMmServer>.InProcess(Server.Mm, "mm", _mm.Object, stats),
            ServerLink<ISchedServer>.InProcess(Server.Sched, "sched", new Mock<ISchedServer>(MockBehavior.Strict).Object, stats),
            new KernelIdentity("Linux", "h", "6.1-umlmicro", "#1", "x86_64", "(none)"), cpus: 2, stats, trace: null);
        var info = SyscallTable.Find("mmap")!;
        var call = _task.Call;
        call.Begin(kernel, _task, info, [0, 1UL << 40, RW, PRIVATE_ANON, ulong.MaxValue, 0]);
        kernel.Router.Handler(info.Number)!(call);
        Exit(call, 0x7f0000000000);

        Assert.Equal(0, Assert.Single(_recorded).Charged);
        _mm.Verify(m => m.ReserveAsync(It.IsAny<CommitRequest>()), Times.Never);
    }

    [Fact]
    public void Resident_memory_is_read_from_the_hosts_status_and_shown_beside_mms_columns_or_a_dash_when_unknown()
    {
        const string status = "Name:\tpython3\nVmPeak:\t  200000 kB\nVmHWM:\t  104400 kB\nVmRSS:\t    9876 kB\nThreads:\t1\n";
        var usage = new MmUsage(0, 0x100000, 0, [new MmProcessStats(1, 0, 0x200000, 0, 0x100000), new MmProcessStats(2, 0, 0x1000, 0, 0)]);

        var text = KernelStats.RenderMemory(usage, new Dictionary<int, KernelStats.Resident> { [1] = new(9876 * 1024, 104400 * 1024) });

        Assert.Equal((9876L * 1024, 104400L * 1024), KernelStats.ParseResident(status));
        Assert.Null(KernelStats.ParseResident("Name:\tzombie\nState:\tZ (zombie)\n"));
        Assert.Contains("\n       1            0         2048            0         1024         9876       104400\n", text);
        Assert.Contains("\n       2            0            4            0            0            -            -\n", text);
    }

    [Fact]
    public void The_map_check_finds_a_difference_and_tolerates_what_linux_may_merge_or_grow()
    {
        Vma[] host =
        [
            new(0x400000, 0x402000, 5, false, 0, "/bin/x"),
            new(0x402000, 0x403000, 5, false, 0x2000, "/bin/x"),
            new(0x10000, 0x12000, RW, false, 0, null),
            new(0x7ff0000, 0x8000000, RW, false, 0, "[stack]"),
        ];
        Vma[] server =
        [
            new(0x400000, 0x403000, 5, false, 0, null),
            new(0x10000, 0x11000, RW, false, 0, null),
            new(0x11000, 0x12000, RW, false, 0, null),
            new(0x7ffe000, 0x8000000, RW, false, 0, "[stack]"),
        ];

        Assert.Null(MapCheck.Difference(server, host));
        Assert.Contains("server has 11000-12000 rw-p 0, host has 10000-12000 rw-p 0", MapCheck.Difference(server[..1].Concat(server[2..]).ToArray(), host));
        Assert.NotNull(MapCheck.Difference(server, [.. host, new(0x9000000, 0x9001000, 1, true, 0, null)]));
        Assert.NotNull(MapCheck.Difference([.. server[..3], server[3] with { Prot = 1 }], host));
    }
}
