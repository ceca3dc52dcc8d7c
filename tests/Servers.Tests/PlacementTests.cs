using UmlMicro.Contracts.Servers;
using UmlMicro.Servers.Mm;
using UmlMicro.Servers.Vfs.Layers;

namespace UmlMicro.ServersTests;

/// <summary>Where MM puts mmap(NULL, ...) (the windows it grants), and /proc/PID/maps as the VFS prints MM's map.</summary>
public sealed class PlacementTests
{
    private const ulong Stack = 0x7ffffffde000, Vvar = 0x7ffff7fc2000, Interp = 0x7ffff7fca000;

    // What execve maps, as the host showed it with its randomisation off.
    private static readonly Vma[] Image =
    [
        new(0x555555554000, 0x555555556000, 1, false, 0, "/usr/bin/cat", 0xfe, 0, 247270),
        new(Vvar, Vvar + 0x4000, 1, false, 0, "[vvar]"),
        new(Vvar + 0x6000, Interp, 5, false, 0, "[vdso]"),
        new(Interp, Interp + 0x1000, 1, false, 0, "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", 0xfe, 0, 331651),
        new(Stack, 0x7ffffffff000, 3, false, 0, "[stack]"),
        new(0xffffffffff600000, 0xffffffffff601000, 4, false, 0, "[vsyscall]"),
    ];

    [Fact]
    public void The_mmap_base_is_below_what_execve_placed_top_down_and_randomness_lowers_it_by_pages()
    {
        Assert.Equal(Vvar, AddressSpace.FromImage(Image).MmapBase);
        Assert.Equal(Vvar - 0x5000, AddressSpace.FromImage(Image, randomPages: 5).MmapBase);
    }

    [Fact]
    public void A_window_is_the_highest_free_range_below_the_base_and_two_pids_never_get_the_same_room()
    {
        var space = AddressSpace.FromImage(Image);

        var first = space.Window(1, 0x3000, 0x1000);
        var second = space.Window(2, 0x3000, 0x1000);

        Assert.Equal((Vvar - AddressSpace.WindowSize, Vvar), first);
        Assert.Equal(first.Start, second.End);
        Assert.Equal(second, space.Window(2, 0x3000, 0x1000)); // its own earlier window given back and granted again, not pid 1's
    }

    [Fact]
    public void A_window_skips_ranges_too_small_and_what_is_mapped_and_keeps_alignment()
    {
        var space = AddressSpace.FromImage(Image);
        // Mapped just below the base, leaving a 1-page hole above it.
        space.Apply(new MmEvent(1, MmOp.Mmap, 0, 0x10000, 0, 3, 0x22, -1, 0, (long)(Vvar - 0x11000)));

        var small = space.Window(1, 0x1000, 0x1000);
        Assert.Equal((Vvar - 0x1000, Vvar), small);

        var large = space.Window(1, 0x400000, 0x200000); // gives the small one back first
        Assert.Equal(Vvar - 0x11000, large.End);
        Assert.True(((large.End - 0x400000) & ~0x1FFFFFUL) >= large.Start);
    }

    [Fact]
    public void No_window_when_nothing_fits()
    {
        var space = AddressSpace.FromImage(Image);

        Assert.Equal((0UL, 0UL), space.Window(1, 1UL << 47, 0x1000));
    }

    [Fact]
    public void Maps_lines_are_linuxs_columns_with_each_mapped_files_line_listed_for_the_vfs()
    {
        var areas = new[]
        {
            new Vma(0x555555554000, 0x555555556000, 1, false, 0, "/host/root/usr/bin/cat", 0xfe, 0, 247270),
            new Vma(0x555555560000, 0x555555581000, 3, false, 0, "[heap]"),
            new Vma(0x7ffff7fa6000, 0x7ffff7fb7000, 3, false, 0, null),
            new Vma(0x7ffff7fb8000, 0x7ffff7fbf000, 1, true, 0x2000, "/memfd:x (deleted)", 0, 1, 9),
            new Vma(0xffffffffff600000, 0xffffffffff601000, 4, false, 0, "[vsyscall]"),
        };

        var text = ProcMapsText.Maps(areas);

        Assert.Equal(
            "555555554000-555555556000 r--p 00000000 fe:00 247270                     /host/root/usr/bin/cat\n" +
            "555555560000-555555581000 rw-p 00000000 00:00 0                          [heap]\n" +
            "7ffff7fa6000-7ffff7fb7000 rw-p 00000000 00:00 0 \n" +
            "7ffff7fb8000-7ffff7fbf000 r--s 00002000 00:01 9                          /memfd:x (deleted)\n" +
            "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n",
            text.Text);
        Assert.Equal([new MappedFile(0, 0xfe, 0, 247270), new MappedFile(3, 0, 1, 9)], text.Files);
    }

    [Fact]
    public void The_rollup_header_spans_the_processs_own_mappings_and_the_counters_are_the_hosts()
    {
        var areas = new[] { Image[0], Image[4], Image[5] };

        string text = ProcMapsText.Rollup(areas, "1-2 ---p 00000000 00:00 0 [rollup]\nRss:                1740 kB\n");

        Assert.Equal("555555554000-7ffffffff000 ---p 00000000 00:00 0                          [rollup]\nRss:                1740 kB\n", text);
    }
}
