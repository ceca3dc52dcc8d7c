using StreamJsonRpc;
using UmlMicro.Contracts.Linux;
using UmlMicro.Contracts.Servers;

namespace UmlMicro.ContractTests;

[Trait(Kit.Kind, Kit.Semantics), Trait(Kit.Server, "mm")]
public sealed class MmContractTests : ServerContractTest<IMmServer>
{
    private const int PROT_READ = 1, PROT_WRITE = 2, RW = PROT_READ | PROT_WRITE;
    private const int MAP_SHARED = 0x01, MAP_PRIVATE = 0x02, MAP_FIXED = 0x10, MAP_ANONYMOUS = 0x20;
    private const int MREMAP_MAYMOVE = 1;
    private const int Anon = MAP_PRIVATE | MAP_ANONYMOUS;

    public MmContractTests() : base("Mm") => Proxy.SpaceExecAsync(1, []).GetAwaiter().GetResult();

    [Fact]
    public async Task Hello_names_the_mm_contract()
    {
        var hello = await Proxy.HelloAsync();

        Assert.Equal(Contract.MmName, hello.Name);
        Assert.Equal(Contract.MmVersion, hello.ContractVersion);
        Assert.Equal(Server.Pid, hello.ServerPid);
    }

    [Fact]
    public async Task Mmap_rounds_the_length_up_to_pages()
    {
        await Mmap(1, 0x10000, 0x2001, RW, Anon);

        Assert.Equal([Private(0x10000, 0x13000, RW)], await Proxy.MapsAsync(1));
    }

    [Fact]
    public async Task A_file_mapping_keeps_its_offset_and_sharing()
    {
        await Mmap(1, 0x20000, 0x3000, PROT_READ, MAP_SHARED, fd: 5, offset: 0x1000);

        Assert.Equal([new Vma(0x20000, 0x23000, PROT_READ, true, 0x1000, null)], await Proxy.MapsAsync(1));
    }

    [Fact]
    public async Task Maps_come_in_address_order()
    {
        await Mmap(1, 0x30000, 0x1000, PROT_READ, Anon);
        await Mmap(1, 0x10000, 0x1000, RW, Anon);
        await Mmap(1, 0x20000, 0x1000, PROT_READ, MAP_PRIVATE, fd: 3);

        var starts = (await Proxy.MapsAsync(1)).Select(v => v.Start);

        Assert.Equal([0x10000UL, 0x20000UL, 0x30000UL], starts);
    }

    [Fact]
    public async Task Munmap_in_the_middle_splits_a_mapping()
    {
        await Mmap(1, 0x20000, 0x4000, PROT_READ, MAP_PRIVATE, fd: 3);

        await Record(1, MmOp.Munmap, 0x21000, 0x1000);

        Assert.Equal(
            [new Vma(0x20000, 0x21000, PROT_READ, false, 0, null), new Vma(0x22000, 0x24000, PROT_READ, false, 0x2000, null)],
            await Proxy.MapsAsync(1));
    }

    [Fact]
    public async Task Mprotect_in_the_middle_splits_a_mapping_in_three()
    {
        await Mmap(1, 0x10000, 0x3000, RW, Anon);

        await Record(1, MmOp.Mprotect, 0x11000, 0x1000, prot: PROT_READ);

        Assert.Equal(
            [Private(0x10000, 0x11000, RW), Private(0x11000, 0x12000, PROT_READ), Private(0x12000, 0x13000, RW)],
            await Proxy.MapsAsync(1));
    }

    [Fact]
    public async Task Map_fixed_replaces_what_it_overlaps()
    {
        await Mmap(1, 0x10000, 0x4000, RW, Anon);

        await Mmap(1, 0x11000, 0x1000, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd: 4, offset: 0x5000);

        Assert.Equal(
            [Private(0x10000, 0x11000, RW), new Vma(0x11000, 0x12000, PROT_READ, false, 0x5000, null), Private(0x12000, 0x14000, RW)],
            await Proxy.MapsAsync(1));
    }

    [Fact]
    public async Task Mremap_moves_grows_and_shrinks()
    {
        await Mmap(1, 0x10000, 0x2000, RW, Anon);

        await Record(1, MmOp.Mremap, 0x10000, 0x2000, newLength: 0x3000, flags: MREMAP_MAYMOVE, result: 0x40000);
        Assert.Equal([Private(0x40000, 0x43000, RW)], await Proxy.MapsAsync(1));

        await Record(1, MmOp.Mremap, 0x40000, 0x3000, newLength: 0x5000, result: 0x40000);
        Assert.Equal([Private(0x40000, 0x45000, RW)], await Proxy.MapsAsync(1));

        await Record(1, MmOp.Mremap, 0x40000, 0x5000, newLength: 0x1000, result: 0x40000);
        Assert.Equal([Private(0x40000, 0x41000, RW)], await Proxy.MapsAsync(1));
    }

    [Fact]
    public async Task Brk_is_planned_by_the_server_from_the_heap_it_placed_after_the_program_and_follows_the_records()
    {
        await Proxy.ConfigureAsync(new MmConfig(0, DeterministicLayout: true));
        await Proxy.SpaceExecAsync(1, [Program(0x400000, 0x600000), new Vma(0x600000, 0x602000, RW, false, 0, null), Stack]);

        Assert.Equal(new BrkPlan(0x602000, 0x602000, 0, 0, 0, 0), await Proxy.BrkAsync(new BrkRequest(1, 0)));
        var grow = await Proxy.BrkAsync(new BrkRequest(1, 0x604345));
        Assert.Equal(new BrkPlan(0x602000, 0x604345, 0x602000, 0x605000, 0, 0), grow);
        await Record(1, MmOp.Brk, 0x604345, 0, result: 0x604345);
        Assert.Equal(Heap(0x602000, 0x605000), (await Proxy.MapsAsync(1))[2]);

        Assert.Equal(new BrkPlan(0x604345, 0x603000, 0, 0, 0x603000, 0x605000), await Proxy.BrkAsync(new BrkRequest(1, 0x603000)));
        await Record(1, MmOp.Brk, 0x603000, 0, result: 0x603000);
        Assert.Equal(Heap(0x602000, 0x603000), (await Proxy.MapsAsync(1))[2]);
        // Into the stack's guard gap, past the top of the space, below the heap: refused, the break stays.
        foreach (ulong refused in new ulong[] { 0x7ffffff00000, 0x7fff_ffff_ffff_f000, ulong.MaxValue, 0x601000 })
            Assert.Equal(new BrkPlan(0x603000, 0x603000, 0, 0, 0, 0), await Proxy.BrkAsync(new BrkRequest(1, refused)));
    }

    [Fact]
    public async Task A_heap_start_is_randomised_above_the_program_unless_the_layout_is_deterministic_and_the_same_on_replay()
    {
        Vma[] image = [Program(0x400000, 0x600000), Stack];
        await Proxy.ConfigureAsync(new MmConfig(0, DeterministicLayout: false, LayoutSeed: 9));
        await Proxy.SpaceExecAsync(1, image);
        ulong start = (await Proxy.BrkAsync(new BrkRequest(1, 0))).Current;

        Assert.InRange(start, 0x601000UL, 0x601000UL + (1UL << 30) - 0x1000);
        var successor = await Successor();
        await successor.ConfigureAsync(new MmConfig(0, DeterministicLayout: false, LayoutSeed: 9));
        await successor.SpaceExecAsync(1, image);
        Assert.Equal(start, (await successor.BrkAsync(new BrkRequest(1, 0))).Current);
        await successor.ConfigureAsync(new MmConfig(0, DeterministicLayout: true));
        await successor.SpaceExecAsync(1, image);
        Assert.Equal(0x600000UL, (await successor.BrkAsync(new BrkRequest(1, 0))).Current);
    }

    [Fact]
    public async Task A_break_the_server_could_not_have_planned_is_a_protocol_violation()
    {
        await Refused(() => Record(1, MmOp.Brk, 0x602000, 0, result: 0x602000)); // pid 1's image holds no program: no heap
    }

    [Fact]
    public async Task Proc_maps_is_linuxs_text_of_the_space_with_each_mapped_files_line_listed()
    {
        await Proxy.SpaceExecAsync(1, [Program(0x400000, 0x401000), Stack]);

        var maps = await Proxy.ProcTextAsync(new ProcTextRequest(1, 1, "maps", ""));

        var lines = maps.Text.Split('\n');
        Assert.Equal(0, maps.Errno);
        Assert.Equal("00400000-00401000 rw-p 00000000 fe:00 1234 ".PadRight(72) + " /usr/bin/prog", lines[0]);
        Assert.EndsWith(" [stack]", maps.Text.TrimEnd('\n'));
        Assert.Equal([new MappedFile(0, 0xfe, 0, 1234)], maps.Files);
        Assert.Equal((await Proxy.MapsAsync(1)).Count, lines.Length - 1); // one line per mapping, as mm/maps has them
    }

    [Fact]
    public async Task Proc_smaps_rollup_spans_the_space_with_the_hosts_counters_and_a_space_less_pid_has_none()
    {
        await Proxy.SpaceExecAsync(1, [Program(0x400000, 0x401000), Stack]);

        var rollup = await Proxy.ProcTextAsync(new ProcTextRequest(1, 1, "smaps_rollup", "1-2 ---p 00000000 00:00 0 [rollup]\nRss:  1740 kB\n"));

        Assert.Equal("00400000-7ffffffff000 ---p 00000000 00:00 0 ".PadRight(72) + " [rollup]\nRss:  1740 kB\n", rollup.Text);
        var none = await Proxy.ProcTextAsync(new ProcTextRequest(9, 9, "maps", ""));
        Assert.Equal(("", 0), (none.Text, none.Errno));
        Assert.Equal(Errno.ENOENT, (await Proxy.ProcTextAsync(new ProcTextRequest(1, 1, "status", ""))).Errno);
    }

    private static Vma Program(ulong start, ulong end) => new(start, end, RW, false, 0, "/usr/bin/prog", 0xfe, 0, 1234);

    private static readonly Vma Stack = new(0x7ffffffde000, 0x7ffffffff000, RW, false, 0, "[stack]");

    [Fact]
    public async Task A_failed_call_changes_nothing()
    {
        await Mmap(1, 0x10000, 0x1000, RW, Anon);

        await Record(1, MmOp.Munmap, 0x10000, 0x1000, result: -Errno.EINVAL);
        await Record(1, MmOp.Mmap, 0, 0x1000, prot: RW, flags: Anon, result: -Errno.ENOMEM);

        Assert.Equal([Private(0x10000, 0x11000, RW)], await Proxy.MapsAsync(1));
    }

    [Fact]
    public async Task Fork_copies_the_space_and_clone_vm_shares_it()
    {
        await Mmap(1, 0x10000, 0x1000, RW, Anon);
        await Proxy.SpaceCreatedAsync(1, 2, shared: false);
        await Proxy.SpaceCreatedAsync(1, 3, shared: true);

        await Mmap(2, 0x20000, 0x1000, RW, Anon);
        await Mmap(3, 0x30000, 0x1000, RW, Anon);

        Assert.Equal([Private(0x10000, 0x11000, RW), Private(0x30000, 0x31000, RW)], await Proxy.MapsAsync(1));
        Assert.Equal([Private(0x10000, 0x11000, RW), Private(0x20000, 0x21000, RW)], await Proxy.MapsAsync(2));
        Assert.Equal(await Proxy.MapsAsync(1), await Proxy.MapsAsync(3));
    }

    [Fact]
    public async Task Exec_gives_a_fresh_space_and_leaves_the_shared_one()
    {
        await Mmap(1, 0x10000, 0x1000, RW, Anon);
        await Proxy.SpaceCreatedAsync(1, 2, shared: true);

        await Proxy.SpaceExecAsync(2, []);
        await Mmap(2, 0x20000, 0x1000, RW, Anon);

        Assert.Equal([Private(0x10000, 0x11000, RW)], await Proxy.MapsAsync(1));
        Assert.Equal([Private(0x20000, 0x21000, RW)], await Proxy.MapsAsync(2));
    }

    [Fact]
    public async Task A_shared_space_outlives_one_of_its_processes()
    {
        await Mmap(1, 0x10000, 0x1000, RW, Anon);
        await Proxy.SpaceCreatedAsync(1, 2, shared: true);

        await Proxy.SpaceExitedAsync(1);

        Assert.Equal([Private(0x10000, 0x11000, RW)], await Proxy.MapsAsync(2));
        Assert.Empty(await Proxy.MapsAsync(1)); // gone, like a zombie's maps
    }

    [Fact]
    public async Task Unknown_processes_are_protocol_errors()
    {
        Assert.Empty(await Proxy.MapsAsync(42)); // a query: no space, nothing mapped
        await Refused(() => Proxy.WindowAsync(new WindowRequest(42, 0x1000, 0x1000)));
        await Refused(() => Mmap(42, 0x10000, 0x1000, RW, Anon));
        await Refused(() => Proxy.SpaceCreatedAsync(42, 43, shared: false));
        await Refused(() => Proxy.SpaceExitedAsync(42));
    }

    [Fact]
    public async Task A_commit_beyond_the_limit_is_refused_before_the_host_runs_it()
    {
        await Proxy.ConfigureAsync(new MmConfig(1L << 20));
        await Mmap(1, 0x100000, 0xc0000, RW, Anon);

        var over = await Proxy.ReserveAsync(new CommitRequest(Call(MmOp.Mmap, 0x80000, RW, Anon), Budget: 0, Refill: 0));
        var readOnly = await Proxy.ReserveAsync(new CommitRequest(Call(MmOp.Mmap, 0x800000, PROT_READ, Anon), Budget: 0, Refill: 0));
        var fits = await Proxy.ReserveAsync(new CommitRequest(Call(MmOp.Mmap, 0x10000, RW, Anon), Budget: 0, Refill: 1L << 20));

        Assert.False(over.Allowed);
        Assert.Equal(new CommitReply(true, 0, 0), readOnly);
        Assert.Equal(new CommitReply(true, 0x10000, 0x40000), fits); // the refill stops at the limit
    }

    [Fact]
    public async Task Usage_counts_what_the_guest_committed_and_its_peak()
    {
        await Mmap(1, 0x100000, 0x3000, RW, Anon);
        await Mmap(1, 0x200000, 0x5000, PROT_READ, MAP_PRIVATE, fd: 3);
        await Record(1, MmOp.Munmap, 0x100000, 0x1000);

        var usage = await Proxy.UsageAsync();

        Assert.Equal((0x2000L, 0x3000L, 0L), (usage.Committed, usage.PeakCommitted, usage.Limit));
        Assert.Equal([new MmProcessStats(1, 0x7000, 0x8000, 0x2000, 0x3000)], usage.Processes);
    }

    [Fact]
    public async Task An_exec_starts_from_the_image_the_host_mapped()
    {
        Vma[] image = [new(0x400000, 0x401000, PROT_READ, false, 0, "/bin/true"), new(0x7ff000, 0x800000, RW, false, 0, "[stack]")];

        await Proxy.SpaceExecAsync(1, image);

        Assert.Equal(image, await Proxy.MapsAsync(1));
        Assert.Equal(0x1000L, (await Proxy.UsageAsync()).Committed);
    }

    [Fact]
    public async Task A_fresh_server_restored_from_a_checkpoint_carries_on_exactly_where_the_first_one_was()
    {
        await Proxy.ConfigureAsync(new MmConfig(1L << 24, DeterministicLayout: true));
        await Proxy.SpaceExecAsync(1, [Program(0x300000, 0x400000), Stack]);
        await Mmap(1, 0x100000, 0x3000, RW, Anon);
        await Record(1, MmOp.Brk, 0x402000, 0, result: 0x402000);
        await Proxy.SpaceCreatedAsync(1, 2, shared: true);                // vfork: one space, two pids
        await Proxy.SpaceCreatedAsync(1, 3, shared: false);               // fork: a copy
        await Mmap(3, 0x200000, 0x1000, RW, MAP_SHARED | MAP_ANONYMOUS);
        await Record(3, MmOp.Shmget, 0, 0x5000, result: 42);              // a System V segment, no space's
        await Proxy.ReserveAsync(new CommitRequest(Call(MmOp.Mmap, 0x10000, RW, Anon), Budget: 0, Refill: 1L << 16));
        var checkpoint = await Proxy.CheckpointAsync();
        Assert.NotNull(checkpoint);

        var successor = await Successor();
        await successor.RestoreAsync(checkpoint!);

        foreach (int vpid in new[] { 1, 2, 3 })
            Assert.Equal(await Proxy.MapsAsync(vpid), await successor.MapsAsync(vpid));
        Assert.Equivalent(await Proxy.UsageAsync(), await successor.UsageAsync(), strict: true);
        foreach (var server in new[] { Proxy, successor })
            await server.RecordAsync(new MmEvent(1, MmOp.ShmDestroy, 42, 0, 0, 0, 0, -1, 0, 0));
        Assert.Equal((await Proxy.UsageAsync()).Committed, (await successor.UsageAsync()).Committed);
        // Still one space for pids 1 and 2: a mapping in one is in the other, on both servers alike.
        foreach (var server in new[] { Proxy, successor })
            await server.RecordAsync(new MmEvent(2, MmOp.Mmap, 0, 0x1000, 0, RW, Anon, -1, 0, 0x300000));
        Assert.Equal(await Proxy.MapsAsync(1), await successor.MapsAsync(1));
        Assert.Equal(await Proxy.ReserveAsync(new CommitRequest(Call(MmOp.Mmap, 0x800000, RW, Anon), 0, 0)),
            await successor.ReserveAsync(new CommitRequest(Call(MmOp.Mmap, 0x800000, RW, Anon), 0, 0)));
    }

    [Fact]
    public async Task A_restored_server_places_as_the_first_one_would_have_its_windows_files_and_seed_included()
    {
        Vma[] image =
        [
            new(0x555000, 0x556000, PROT_READ, false, 0, "/usr/bin/cat", 0xfe, 0, 247270),
            new(0x7ffff7fc2000, 0x7ffff7fc6000, PROT_READ, false, 0, "[vvar]"),
            new(0x7ffffffde000, 0x7ffffffff000, RW, false, 0, "[stack]"),
        ];
        await Proxy.ConfigureAsync(new MmConfig(0, DeterministicLayout: false, LayoutSeed: 7));
        await Proxy.SpaceExecAsync(4, image);
        await Proxy.SpaceCreatedAsync(4, 5, shared: true);
        var first = await Proxy.WindowAsync(new WindowRequest(4, 0x1000, 0x1000));
        var checkpoint = await Proxy.CheckpointAsync();

        var successor = await Successor();
        await successor.RestoreAsync(checkpoint!);

        Assert.Equal(await Proxy.MapsAsync(4), await successor.MapsAsync(4)); // the file's device and inode too
        Assert.Equal(await Proxy.WindowAsync(new WindowRequest(5, 0x1000, 0x1000)), await successor.WindowAsync(new WindowRequest(5, 0x1000, 0x1000)));
        Assert.True((await successor.WindowAsync(new WindowRequest(5, 0x1000, 0x1000))).End <= first.Start); // pid 4's window is still taken
        await Proxy.SpaceExecAsync(6, image);
        await successor.SpaceExecAsync(6, image);
        Assert.Equal(await Proxy.WindowAsync(new WindowRequest(6, 0x1000, 0x1000)), await successor.WindowAsync(new WindowRequest(6, 0x1000, 0x1000)));
    }

    [Fact]
    public async Task A_checkpoint_is_restored_into_a_fresh_server_only_and_garbage_is_refused()
    {
        var checkpoint = await Proxy.CheckpointAsync();

        await Refused(() => Proxy.RestoreAsync(checkpoint!));
        var successor = await Successor();
        await Assert.ThrowsAnyAsync<StreamJsonRpc.RemoteRpcException>(() => successor.RestoreAsync("[1, 2"));
        await Assert.ThrowsAnyAsync<StreamJsonRpc.RemoteRpcException>(() => successor.RestoreAsync("{\"Spaces\": [{\"Vpids\": [1, 1]}]}"));
        await successor.SpaceExecAsync(1, []);
        Assert.Empty(await successor.MapsAsync(1));
    }

    private static MmEvent Call(MmOp op, ulong length, int prot, int flags) => new(1, op, 0, length, 0, prot, flags, -1, 0, 0);

    private static Vma Private(ulong start, ulong end, int prot) => new(start, end, prot, false, 0, null);

    private static Vma Heap(ulong start, ulong end) => new(start, end, RW, false, 0, "[heap]");

    [Fact]
    public async Task A_file_mapping_shows_the_file_it_maps_with_device_and_inode_and_keeps_them_when_split()
    {
        var file = new MmBacking("/usr/lib/libc.so.6", 0xfe, 0, 332096);
        await Proxy.RecordAsync(new MmEvent(1, MmOp.Mmap, 0, 0x3000, 0, PROT_READ, MAP_PRIVATE, 3, 0x1000, 0x20000, Backing: file));

        await Record(1, MmOp.Mprotect, 0x21000, 0x1000, prot: RW);

        Assert.Equal(
            [
                new Vma(0x20000, 0x21000, PROT_READ, false, 0x1000, file.Name, 0xfe, 0, 332096),
                new Vma(0x21000, 0x22000, RW, false, 0x2000, file.Name, 0xfe, 0, 332096),
                new Vma(0x22000, 0x23000, PROT_READ, false, 0x3000, file.Name, 0xfe, 0, 332096),
            ],
            await Proxy.MapsAsync(1));
    }

    [Fact]
    public async Task The_image_keeps_its_devices_and_inodes_and_a_pid_without_a_space_maps_nothing()
    {
        await Proxy.SpaceExecAsync(2, [new Vma(0x555000, 0x556000, PROT_READ, false, 0, "/usr/bin/cat", 0xfe, 0, 247270)]);

        Assert.Equal(247270UL, Assert.Single(await Proxy.MapsAsync(2)).Inode);
        Assert.Empty(await Proxy.MapsAsync(99));
    }

    [Fact]
    public async Task A_window_for_placement_lies_below_the_mmap_base_and_is_the_same_when_the_messages_are_replayed()
    {
        Vma[] image =
        [
            new(0x7ffff7fc2000, 0x7ffff7fc6000, PROT_READ, false, 0, "[vvar]"),
            new(0x7ffffffde000, 0x7ffffffff000, RW, false, 0, "[stack]"),
        ];
        await Proxy.ConfigureAsync(new MmConfig(0, DeterministicLayout: false, LayoutSeed: 42));
        await Proxy.SpaceExecAsync(3, image);

        var window = await Proxy.WindowAsync(new WindowRequest(3, 0x3000, 0x1000));

        Assert.True(window.End <= 0x7ffff7fc2000 && window.End - window.Start == 1UL << 30, $"{window}");
        // A restarted server sent the same messages answers the same (the randomness comes from the seed).
        using var again = ServerProcess.Start("Mm");
        using var rpc = RpcWire.Create(again.Input, again.Output);
        var proxy = rpc.Attach<IMmServer>();
        rpc.StartListening();
        await proxy.ConfigureAsync(new MmConfig(0, DeterministicLayout: false, LayoutSeed: 42));
        await proxy.SpaceExecAsync(3, image);
        Assert.Equal(window, await proxy.WindowAsync(new WindowRequest(3, 0x3000, 0x1000)));
    }

    [Fact]
    public async Task A_deterministic_layout_places_right_below_what_execve_placed_top_down()
    {
        await Proxy.ConfigureAsync(new MmConfig(0, DeterministicLayout: true, LayoutSeed: 42));
        await Proxy.SpaceExecAsync(3, [new Vma(0x7ffff7fc2000, 0x7ffff7fc6000, PROT_READ, false, 0, "[vvar]"), new Vma(0x7ffffffde000, 0x7ffffffff000, RW, false, 0, "[stack]")]);

        Assert.Equal(0x7ffff7fc2000UL, (await Proxy.WindowAsync(new WindowRequest(3, 0x1000, 0x1000))).End);
    }

    private Task Mmap(int vpid, ulong at, ulong length, int prot, int flags, int fd = -1, long offset = 0) =>
        Record(vpid, MmOp.Mmap, 0, length, prot: prot, flags: flags, fd: fd, offset: offset, result: (long)at);

    private Task Record(int vpid, MmOp op, ulong addr, ulong length, ulong newLength = 0, int prot = 0, int flags = 0,
        int fd = -1, long offset = 0, long result = 0) =>
        Proxy.RecordAsync(new MmEvent(vpid, op, addr, length, newLength, prot, flags, fd, offset, result));
}
