using StreamJsonRpc;
using UmlMicro.Contracts.Servers;
using UmlMicro.Servers.Mm;

namespace UmlMicro.ServersTests;

public sealed class AddressSpaceTests
{
    private const int RW = 3;
    private const int MAP_SHARED = 0x01, MAP_PRIVATE = 0x02, MAP_SHARED_VALIDATE = 0x03, MAP_ANONYMOUS = 0x20;
    private const int MREMAP_MAYMOVE = 1, MREMAP_DONTUNMAP = 4;

    private readonly AddressSpace space = new();

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
    public void The_heap_starts_at_the_first_break_and_follows_it_by_pages()
    {
        Brk(0x555000);
        Assert.Equal(0, space.Vmas.Count);

        Brk(0x555001);
        Assert.Equal([Heap(0x555000, 0x556000)], space.Vmas.Areas);
        Brk(0x578000);
        Assert.Equal([Heap(0x555000, 0x578000)], space.Vmas.Areas);
        Brk(0x560010);
        Assert.Equal([Heap(0x555000, 0x561000)], space.Vmas.Areas);
        Brk(0x555000);
        Assert.Equal(0, space.Vmas.Count);
    }

    [Fact]
    public void A_break_below_the_start_keeps_the_heap_empty()
    {
        Brk(0x555000);
        Brk(0x556000);

        Brk(0x554000);

        Assert.Equal(0, space.Vmas.Count);
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
        Brk(0x555000);
        Brk(0x557000);
        var child = space.Fork();

        child.Apply(Event(MmOp.Brk, addr: 0x559000, result: 0x559000));

        Assert.Equal([Heap(0x555000, 0x557000)], space.Vmas.Areas);
        Assert.Equal([Heap(0x555000, 0x559000)], child.Vmas.Areas);
    }

    [Fact]
    public async Task The_server_keeps_shared_spaces_until_the_last_process_lets_go()
    {
        var mm = new MmServer();
        await mm.SpaceExecAsync(1);
        await mm.SpaceCreatedAsync(1, 2, shared: true);
        await mm.RecordAsync(Event(MmOp.Mmap, length: 0x1000, prot: RW, flags: MAP_SHARED | MAP_ANONYMOUS, result: 0x10000) with { Vpid = 2 });

        await mm.SpaceExitedAsync(2);

        Assert.Single(await mm.MapsAsync(1));
        await Assert.ThrowsAsync<LocalRpcException>(() => mm.MapsAsync(2));
    }

    [Fact]
    public async Task The_server_refuses_an_extent_the_host_would_have_refused()
    {
        var mm = new MmServer();
        await mm.SpaceExecAsync(1);

        var error = await Assert.ThrowsAsync<LocalRpcException>(() =>
            mm.RecordAsync(Event(MmOp.Munmap, addr: 0x10010, length: 0x1000)));

        Assert.Contains("Munmap", error.Message);
    }

    [Fact]
    public async Task The_server_records_the_memory_limit_without_enforcing_it()
    {
        var mm = new MmServer();

        await mm.ConfigureAsync(new MmConfig(1 << 20));
        await mm.SpaceExecAsync(1);
        await mm.RecordAsync(Event(MmOp.Mmap, length: 1UL << 30, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS, result: 0x10000000));

        Assert.Equal(1 << 20, mm.MemoryLimitBytes);
        Assert.Single(await mm.MapsAsync(1));
    }

    private void Brk(ulong result) => space.Apply(Event(MmOp.Brk, addr: result, result: (long)result));

    private static Area Heap(ulong start, ulong end) => new(start, end, RW, false, true, 0, AddressSpace.HeapName);

    private static MmEvent Event(MmOp op, ulong addr = 0, ulong length = 0, ulong newLength = 0, int prot = 0, int flags = 0,
        int fd = -1, long offset = 0, long result = 0) =>
        new(1, op, addr, length, newLength, prot, flags, fd, offset, result);
}
