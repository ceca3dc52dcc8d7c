using StreamJsonRpc;
using UmlMicro.Contracts.Servers;
using UmlMicro.Servers.Mm;

namespace UmlMicro.ServersTests;

public sealed class AddressSpaceTests
{
    private const int RW = 3;
    private const int MAP_SHARED = 0x01, MAP_PRIVATE = 0x02, MAP_SHARED_VALIDATE = 0x03, MAP_ANONYMOUS = 0x20;
    private const int MREMAP_MAYMOVE = 1, MREMAP_DONTUNMAP = 4;

    private static readonly Vma Stack = new(0x7ffffffde000, 0x7ffffffff000, RW, false, 0, "[stack]");

    private readonly AddressSpace space = new();

    // A program whose data ends at 0x555000 (deterministic layout: the heap starts right there).
    private readonly AddressSpace prog = AddressSpace.FromImage([Program(0x400000, 0x555000), Stack]);

    [Fact]
    public void Mmap_tells_anonymous_from_file_mappings_by_flag_or_fd()
    {
        space.Apply(Event(MmOp.Mmap, length: 0x1000, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS, fd: 7, offset: 0x5000, result: 0x10000));
        space.Apply(Event(MmOp.Mmap, length: 0x1000, prot: RW, flags: MAP_PRIVATE, fd: -1, result: 0x20000));
        space.Apply(Event(MmOp.Mmap, length: 0x1000, prot: RW, flags: MAP_SHARED_VALIDATE, fd: 7, offset: 0x5000, result: 0x30000));

        var areas = space.Vmas.Areas;
        Assert.Equal((true, 0L, false), (areas[0].Anonymous, areas[0].Offset, areas[0].Shared));
        Assert.True(areas[1].Anonymous);
        Assert.Equal((false, 0x5000L, true), (areas[2].Anonymous, areas[2].Offset, areas[2].Shared));
    }

    [Fact]
    public void Only_read_write_and_exec_are_kept_of_a_protection()
    {
        const int PROT_GROWSDOWN = 0x01000000;
        space.Apply(Event(MmOp.Mmap, length: 0x1000, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS, result: 0x10000));

        space.Apply(Event(MmOp.Mprotect, addr: 0x10000, length: 1, prot: 1 | PROT_GROWSDOWN));

        Assert.Equal(1, space.Vmas.Areas.Single().Prot);
    }

    [Fact]
    public void The_heap_starts_after_the_programs_data_and_follows_the_break_by_pages()
    {
        Assert.Equal(0x555000UL, prog.PlanBrk(0).Current);

        Brk(0x555001);
        Assert.Equal([Heap(0x555000, 0x556000)], HeapAreas());
        Brk(0x578000);
        Assert.Equal([Heap(0x555000, 0x578000)], HeapAreas());
        Brk(0x560010);
        Assert.Equal([Heap(0x555000, 0x561000)], HeapAreas());
        Brk(0x555000);
        Assert.Empty(HeapAreas());
    }

    [Fact]
    public void The_bss_after_the_program_is_part_of_the_programs_data_and_a_top_down_program_gets_its_heap_at_et_dyn_base()
    {
        var withBss = AddressSpace.FromImage([Program(0x400000, 0x402000), new Vma(0x402000, 0x405000, RW, false, 0, null), Stack]);
        Vma loader = new(0x7ffff7fc3000, 0x7ffff7fff000, RW, false, 0, "/usr/lib64/ld-linux-x86-64.so.2");
        var topDown = AddressSpace.FromImage([loader, Stack]);

        Assert.Equal(0x405000UL, withBss.PlanBrk(0).Current);
        Assert.Equal(0x555555555000UL, topDown.PlanBrk(0).Current);
        Assert.Equal(0x555555555000UL + 7 * 0x1000, AddressSpace.FromImage([loader, Stack], heapRandomPages: 7).PlanBrk(0).Current);
    }

    [Fact]
    public void A_random_heap_starts_a_page_past_the_bss_and_that_many_pages_higher_and_an_image_without_a_program_has_none()
    {
        var random = AddressSpace.FromImage([Program(0x400000, 0x555000), Stack], heapRandomPages: 0x10);
        var none = AddressSpace.FromImage([Stack]);

        Assert.Equal(0x555000UL + 0x11000, random.PlanBrk(0).Current);
        Assert.Equal(new BrkPlan(0, 0, 0, 0, 0, 0), none.PlanBrk(0x10000));
        Assert.Throws<ArgumentException>(() => none.Apply(Event(MmOp.Brk, addr: 0x10000, result: 0x10000)));
    }

    [Fact]
    public void Brk_plans_as_linux_decides_refused_below_the_start_shrinks_always_growth_only_into_free_pages()
    {
        Brk(0x558000);
        prog.Apply(Event(MmOp.Mmap, length: 0x1000, prot: RW, flags: Anon, result: 0x560000));

        Assert.Equal(new BrkPlan(0x558000, 0x558000, 0, 0, 0, 0), prog.PlanBrk(0x554000));             // below the start
        Assert.Equal(new BrkPlan(0x558000, 0x556123, 0, 0, 0x557000, 0x558000), prog.PlanBrk(0x556123)); // a shrink
        Assert.Equal(new BrkPlan(0x558000, 0x557800, 0, 0, 0, 0), prog.PlanBrk(0x557800));               // the same page
        Assert.Equal(new BrkPlan(0x558000, 0x55f000, 0x558000, 0x55f000, 0, 0), prog.PlanBrk(0x55f000)); // a page short of the next mapping
        Assert.Equal(new BrkPlan(0x558000, 0x558000, 0, 0, 0, 0), prog.PlanBrk(0x55f001));               // closer: refused
        Assert.Equal(new BrkPlan(0x558000, 0x558000, 0, 0, 0, 0), prog.PlanBrk(ulong.MaxValue));          // past the space
    }

    [Fact]
    public void A_break_may_not_come_into_the_stacks_guard_gap()
    {
        ulong gapStart = Stack.Start - 256 * 0x1000;

        Assert.Equal(gapStart - 0x1000, prog.PlanBrk(gapStart - 0x1000).Break);
        Assert.Equal(0x555000UL, prog.PlanBrk(gapStart - 0xfff).Break);
    }

    [Fact]
    public void A_shrink_with_nothing_left_to_unmap_is_refused_as_linux_refuses_it()
    {
        Brk(0x558000);
        prog.Apply(Event(MmOp.Munmap, addr: 0x555000, length: 0x3000));

        Assert.Equal(new BrkPlan(0x558000, 0x558000, 0, 0, 0, 0), prog.PlanBrk(0x556000));
    }

    [Fact]
    public void Mremap_flags_decide_whether_the_old_range_stays()
    {
        space.Apply(Event(MmOp.Mmap, length: 0x2000, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS, result: 0x10000));

        space.Apply(Event(MmOp.Mremap, addr: 0x10000, length: 0x2000, newLength: 0x2000, flags: MREMAP_MAYMOVE | MREMAP_DONTUNMAP, result: 0x40000));
        Assert.Equal(2, space.Vmas.Count);
        space.Apply(Event(MmOp.Mremap, addr: 0x40000, length: 0x2000, newLength: 0x1800, flags: MREMAP_MAYMOVE, result: 0x60000));

        Assert.Equal([0x10000UL, 0x60000UL], space.Vmas.Areas.Select(a => a.Start));
        Assert.Equal(0x62000UL, space.Vmas.Areas[1].End);
    }

    [Fact]
    public void A_fork_copies_the_break_too()
    {
        Brk(0x557000);
        var child = prog.Fork();

        child.Apply(Event(MmOp.Brk, addr: 0x559000, result: 0x559000));

        Assert.Equal([Heap(0x555000, 0x557000)], HeapAreas());
        Assert.Equal([Heap(0x555000, 0x559000)], child.Vmas.Areas.Where(a => a.Name == AddressSpace.HeapName));
        Assert.Equal(0x559000UL, child.PlanBrk(0).Current);
    }

    [Fact]
    public async Task The_server_keeps_shared_spaces_until_the_last_process_lets_go()
    {
        var mm = new MmServer();
        await mm.SpaceExecAsync(1, []);
        await mm.SpaceCreatedAsync(1, 2, shared: true);
        await mm.RecordAsync(Event(MmOp.Mmap, length: 0x1000, prot: RW, flags: MAP_SHARED | MAP_ANONYMOUS, result: 0x10000) with { Vpid = 2 });

        await mm.SpaceExitedAsync(2);

        Assert.Single(await mm.MapsAsync(1));
        Assert.Empty(await mm.MapsAsync(2)); // as a zombie's /proc/PID/maps: nothing
        await Assert.ThrowsAsync<LocalRpcException>(() => mm.RecordAsync(Event(MmOp.Munmap, addr: 0x10000, length: 0x1000) with { Vpid = 2 }));
    }

    [Fact]
    public async Task The_server_refuses_an_extent_the_host_would_have_refused()
    {
        var mm = new MmServer();
        await mm.SpaceExecAsync(1, []);

        var error = await Assert.ThrowsAsync<LocalRpcException>(() =>
            mm.RecordAsync(Event(MmOp.Munmap, addr: 0x10010, length: 0x1000)));

        Assert.Contains("Munmap", error.Message);
    }

    private const int PROT_READ = 1, MAP_FIXED = 0x10, MAP_NORESERVE = 0x4000;
    private const int Anon = MAP_PRIVATE | MAP_ANONYMOUS;

    [Fact]
    public void Private_writable_and_shared_anonymous_memory_is_committed_as_linux_accounts_it()
    {
        space.Apply(Event(MmOp.Mmap, length: 0x3000, prot: RW, flags: Anon, result: 0x10000));
        space.Apply(Event(MmOp.Mmap, length: 0x1000, prot: RW, flags: MAP_PRIVATE, fd: 3, result: 0x20000));
        space.Apply(Event(MmOp.Mmap, length: 0x2000, prot: RW, flags: MAP_SHARED | MAP_ANONYMOUS, result: 0x30000));
        space.Apply(Event(MmOp.Mmap, length: 0x5000, prot: PROT_READ, flags: Anon, result: 0x40000));
        space.Apply(Event(MmOp.Mmap, length: 0x5000, prot: RW, flags: MAP_SHARED, fd: 3, result: 0x50000));
        space.Apply(Event(MmOp.Mmap, length: 0x5000, prot: RW, flags: Anon | MAP_NORESERVE, result: 0x60000));

        Assert.Equal(0x6000UL, space.Vmas.Committed);
        Assert.Equal(0x15000UL, space.Vmas.Mapped);
    }

    [Fact]
    public void Mprotect_commits_private_memory_made_writable_and_keeps_it_committed_after()
    {
        space.Apply(Event(MmOp.Mmap, length: 0x4000, prot: PROT_READ, flags: Anon, result: 0x10000));
        var call = Event(MmOp.Mprotect, addr: 0x11000, length: 0x2000, prot: RW);

        Assert.Equal(0x2000UL, space.Charge(call));
        space.Apply(call);
        space.Apply(Event(MmOp.Mprotect, addr: 0x10000, length: 0x4000, prot: PROT_READ));

        Assert.Equal(0x2000UL, space.Vmas.Committed);
        Assert.Equal(0UL, space.Charge(call));
    }

    [Fact]
    public void Map_fixed_over_committed_memory_charges_only_the_difference()
    {
        space.Apply(Event(MmOp.Mmap, length: 0x2000, prot: RW, flags: Anon, result: 0x10000));

        Assert.Equal(0x1000UL, space.Charge(Event(MmOp.Mmap, addr: 0x11000, length: 0x2000, prot: RW, flags: Anon | MAP_FIXED)));
        Assert.Equal(0x2000UL, space.Charge(Event(MmOp.Mmap, addr: 0x11000, length: 0x2000, prot: RW, flags: Anon)));
    }

    [Fact]
    public void Brk_and_mremap_charge_their_growth()
    {
        Assert.Equal(0x3000UL, prog.Charge(Event(MmOp.Brk, addr: 0x557001)));
        Assert.Equal(0UL, prog.Charge(Event(MmOp.Brk, addr: 0x554000)));
        prog.Apply(Event(MmOp.Mmap, length: 0x2000, prot: RW, flags: Anon, result: 0x10000));
        prog.Apply(Event(MmOp.Mmap, length: 0x2000, prot: PROT_READ, flags: MAP_PRIVATE, fd: 3, result: 0x20000));

        Assert.Equal(0x3000UL, prog.Charge(Event(MmOp.Mremap, addr: 0x10000, length: 0x2000, newLength: 0x5000)));
        Assert.Equal(0UL, prog.Charge(Event(MmOp.Mremap, addr: 0x20000, length: 0x2000, newLength: 0x5000)));
        Assert.Equal(0x2000UL, prog.Charge(Event(MmOp.Mremap, addr: 0x10000, length: 0x2000, newLength: 0x2000, flags: MREMAP_MAYMOVE | MREMAP_DONTUNMAP)));
    }

    [Fact]
    public void A_fork_commits_private_memory_again_but_not_shared_memory()
    {
        space.Apply(Event(MmOp.Mmap, length: 0x2000, prot: RW, flags: Anon, result: 0x10000));
        space.Apply(Event(MmOp.Mmap, length: 0x3000, prot: RW, flags: MAP_SHARED | MAP_ANONYMOUS, result: 0x20000));

        var child = space.Fork();

        Assert.Equal(0x5000UL, space.Vmas.Committed);
        Assert.Equal(0x2000UL, child.Vmas.Committed);
        Assert.Equal(space.Vmas.Mapped, child.Vmas.Mapped);
    }

    [Fact]
    public void A_fork_leaves_dontfork_areas_out_of_the_copy_and_its_charge_and_keeps_wipeonfork_ones()
    {
        space.Apply(Event(MmOp.Mmap, length: 0x8000, prot: RW, flags: Anon, result: 0x10000));
        space.Apply(Event(MmOp.Madvise, addr: 0x12000, length: 0x2000, flags: 10));   // MADV_DONTFORK
        space.Apply(Event(MmOp.Madvise, addr: 0x15000, length: 0x1000, flags: 18));   // MADV_WIPEONFORK

        Assert.Equal(5, space.Vmas.Count); // the advice splits the area, as Linux's differing vm_flags do
        Assert.Equal(0x6000UL, space.Charge(Event(MmOp.Fork)));
        Assert.Equal([(0x10000UL, 0x12000UL), (0x14000UL, 0x18000UL)], Ranges(space.Fork()));

        space.Apply(Event(MmOp.Madvise, addr: 0x12000, length: 0x2000, flags: 11));   // MADV_DOFORK
        space.Apply(Event(MmOp.Madvise, addr: 0x15000, length: 0x1000, flags: 19));   // MADV_KEEPONFORK
        Assert.Equal(1, space.Vmas.Count);
        space.Apply(Event(MmOp.Madvise, addr: 0x17000, length: 0x3000, flags: 10));   // a range past the area: its part
        Assert.Equal([(0x10000UL, 0x17000UL)], Ranges(space.Fork()));
    }

    /// <summary>The map's ranges with neighbours joined (what a process could tell by probing its pages).</summary>
    private static List<(ulong, ulong)> Ranges(AddressSpace s)
    {
        var ranges = new List<(ulong Start, ulong End)>();
        foreach (var a in s.Vmas.Areas)
            if (ranges.Count > 0 && ranges[^1].End == a.Start) ranges[^1] = (ranges[^1].Start, a.End);
            else ranges.Add((a.Start, a.End));
        return [.. ranges.Select(r => (r.Start, r.End))];
    }

    [Fact]
    public void An_image_commits_its_writable_private_areas()
    {
        var image = AddressSpace.FromImage([
            new Vma(0x555000, 0x557000, PROT_READ | 4, false, 0, "/usr/bin/cat"),
            new Vma(0x557000, 0x558000, RW, false, 0x2000, "/usr/bin/cat"),
            new Vma(0x7ffc000, 0x7fff000, RW, false, 0, "[stack]"),
            new Vma(0x8000000, 0x8002000, PROT_READ | 4, false, 0, "[vdso]"),
        ]);

        Assert.Equal(0x4000UL, image.Vmas.Committed);
        Assert.Equal(["/usr/bin/cat", "/usr/bin/cat", "[stack]", "[vdso]"], image.Vmas.Areas.Select(a => a.Name));
    }

    [Fact]
    public async Task The_server_refuses_a_commit_beyond_the_limit_and_grants_up_to_it()
    {
        var mm = new MmServer();
        await mm.ConfigureAsync(new MmConfig(0x10000));
        await mm.SpaceExecAsync(1, []);

        var tooBig = await mm.ReserveAsync(new CommitRequest(Event(MmOp.Mmap, length: 0x11000, prot: RW, flags: Anon), Budget: 0, Refill: 0));
        var fits = await mm.ReserveAsync(new CommitRequest(Event(MmOp.Mmap, length: 0x4000, prot: RW, flags: Anon), Budget: 0, Refill: 0x100000));

        Assert.False(tooBig.Allowed);
        Assert.Equal(new CommitReply(true, 0x4000, 0x10000), fits);
    }

    [Fact]
    public async Task A_grant_counts_until_its_calls_are_recorded_and_unmapping_frees_room()
    {
        var mm = new MmServer();
        await mm.ConfigureAsync(new MmConfig(0x10000));
        await mm.SpaceExecAsync(1, []);
        var call = Event(MmOp.Mmap, length: 0xc000, prot: RW, flags: Anon);

        Assert.True((await mm.ReserveAsync(new CommitRequest(call, 0, 0))).Allowed);
        Assert.False((await mm.ReserveAsync(new CommitRequest(call, 0, 0))).Allowed);
        await mm.RecordAsync(call with { Result = 0x100000, Charged = 0xc000 });
        Assert.False((await mm.ReserveAsync(new CommitRequest(call, 0, 0))).Allowed);
        await mm.RecordAsync(Event(MmOp.Munmap, addr: 0x100000, length: 0xc000));

        Assert.True((await mm.ReserveAsync(new CommitRequest(call, 0, 0))).Allowed);
    }

    [Fact]
    public async Task A_space_shared_by_two_processes_is_committed_once_until_both_let_go()
    {
        var mm = new MmServer();
        await mm.SpaceExecAsync(1, []);
        await mm.RecordAsync(Event(MmOp.Mmap, length: 0x2000, prot: RW, flags: Anon, result: 0x10000));
        await mm.SpaceCreatedAsync(1, 2, shared: true);
        await mm.SpaceCreatedAsync(1, 3, shared: false);

        Assert.Equal(0x4000, (await mm.UsageAsync()).Committed);
        await mm.SpaceExitedAsync(1);
        await mm.SpaceExitedAsync(3);
        Assert.Equal(0x2000, (await mm.UsageAsync()).Committed);
        await mm.SpaceExitedAsync(2);
        var usage = await mm.UsageAsync();

        Assert.Equal((0L, 0x4000L), (usage.Committed, usage.PeakCommitted));
        Assert.Equal([1, 2, 3], usage.Processes.Select(p => p.Vpid));
        Assert.All(usage.Processes, p => Assert.Equal((0L, 0x2000L), (p.Mapped, p.PeakMapped)));
    }

    [Fact]
    public async Task A_system_v_segment_is_committed_from_its_creation_to_its_destruction_in_no_space()
    {
        const int SHM_NORESERVE = 0x1000;
        var mm = new MmServer();
        await mm.ConfigureAsync(new MmConfig(0x10000));
        await mm.SpaceExecAsync(1, []);

        Assert.Equal(0x3000L, (await mm.ReserveAsync(new CommitRequest(Event(MmOp.Shmget, length: 0x2001), 0, 0))).Charge);
        Assert.Equal(0L, (await mm.ReserveAsync(new CommitRequest(Event(MmOp.Shmget, length: 0x2001, flags: SHM_NORESERVE), 0, 0x1000))).Charge);
        await mm.RecordAsync(Event(MmOp.Shmget, length: 0x2001, result: 7) with { Charged = 0x3000 });
        await mm.RecordAsync(Event(MmOp.Shmget, length: 0x100000, flags: SHM_NORESERVE, result: 8));
        Assert.Equal(0x3000L, (await mm.UsageAsync()).Committed);
        Assert.Empty(await mm.MapsAsync(1));
        Assert.False((await mm.ReserveAsync(new CommitRequest(Event(MmOp.Mmap, length: 0xe000, prot: RW, flags: Anon), 0, 0))).Allowed);

        await mm.RecordAsync(Event(MmOp.ShmDestroy, addr: 7));

        Assert.Equal(0L, (await mm.UsageAsync()).Committed);
        Assert.True((await mm.ReserveAsync(new CommitRequest(Event(MmOp.Mmap, length: 0xe000, prot: RW, flags: Anon), 0, 0))).Allowed);
        await Assert.ThrowsAnyAsync<Exception>(() => mm.RecordAsync(Event(MmOp.ShmDestroy, addr: 7)));
    }

    private void Brk(ulong result) => prog.Apply(Event(MmOp.Brk, addr: result, result: (long)result));

    private static Vma Program(ulong start, ulong end) => new(start, end, RW, false, 0, "/usr/bin/prog");

    private IEnumerable<Area> HeapAreas() => prog.Vmas.Areas.Where(a => a.Name == AddressSpace.HeapName);

    private static Area Heap(ulong start, ulong end) => new(start, end, RW, false, true, 0, AddressSpace.HeapName, Accounted: true);

    private static MmEvent Event(MmOp op, ulong addr = 0, ulong length = 0, ulong newLength = 0, int prot = 0, int flags = 0,
        int fd = -1, long offset = 0, long result = 0) =>
        new(1, op, addr, length, newLength, prot, flags, fd, offset, result);
}
