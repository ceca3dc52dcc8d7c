using UmlMicro.Servers.Mm;

namespace UmlMicro.ServersTests;

public sealed class VmaMapTests
{
    private const int R = 1, RW = 3, RX = 5;

    private readonly VmaMap map = new();

    [Fact]
    public void Lengths_round_up_to_whole_pages()
    {
        Assert.Equal(0UL, VmaMap.PageAlign(0));
        Assert.Equal(0x1000UL, VmaMap.PageAlign(1));
        Assert.Equal(0x1000UL, VmaMap.PageAlign(0x1000));
        Assert.Equal(0x2000UL, VmaMap.PageAlign(0x1001));
        Assert.Throws<OverflowException>(() => VmaMap.PageAlign(ulong.MaxValue));
    }

    [Fact]
    public void Areas_come_back_in_address_order()
    {
        map.Map(Anon(0x30000, 0x31000, R));
        map.Map(Anon(0x10000, 0x11000, RW));
        map.Map(File(0x20000, 0x22000, R, offset: 0));

        Assert.Equal([0x10000UL, 0x20000UL, 0x30000UL], map.Areas.Select(a => a.Start));
    }

    [Fact]
    public void A_map_over_existing_areas_replaces_exactly_what_it_covers()
    {
        map.Map(File(0x10000, 0x14000, R, offset: 0x8000));
        map.Map(Anon(0x14000, 0x16000, RW));

        map.Map(Anon(0x13000, 0x15000, RX));

        Assert.Equal(
            [File(0x10000, 0x13000, R, 0x8000), Anon(0x13000, 0x15000, RX), Anon(0x15000, 0x16000, RW)],
            map.Areas);
    }

    [Fact]
    public void Unmapping_the_middle_splits_and_moves_the_file_offset()
    {
        map.Map(File(0x10000, 0x14000, R, offset: 0x1000));

        map.Unmap(0x11000, 0x12000);

        Assert.Equal([File(0x10000, 0x11000, R, 0x1000), File(0x12000, 0x14000, R, 0x3000)], map.Areas);
    }

    [Fact]
    public void Unmapping_across_several_areas_and_holes_keeps_the_outer_parts()
    {
        map.Map(Anon(0x10000, 0x12000, R));
        map.Map(Anon(0x13000, 0x14000, RW));
        map.Map(Anon(0x16000, 0x18000, R));

        map.Unmap(0x11000, 0x17000);

        Assert.Equal([Anon(0x10000, 0x11000, R), Anon(0x17000, 0x18000, R)], map.Areas);
    }

    [Fact]
    public void Unmapping_a_hole_changes_nothing()
    {
        map.Map(Anon(0x10000, 0x11000, R));

        map.Unmap(0x20000, 0x30000);

        Assert.Equal([Anon(0x10000, 0x11000, R)], map.Areas);
    }

    [Fact]
    public void Protecting_the_middle_splits_in_three()
    {
        map.Map(File(0x10000, 0x13000, RW, offset: 0));

        map.Protect(0x11000, 0x12000, R);

        Assert.Equal(
            [File(0x10000, 0x11000, RW, 0), File(0x11000, 0x12000, R, 0x1000) with { Accounted = true }, File(0x12000, 0x13000, RW, 0x2000)],
            map.Areas);
        Assert.Equal(0x3000UL, map.Committed); // a page that was writable stays committed, as VM_ACCOUNT stays in Linux
    }

    [Fact]
    public void Protecting_back_merges_private_anonymous_memory_again()
    {
        map.Map(Anon(0x10000, 0x13000, RW));

        map.Protect(0x11000, 0x12000, R);
        Assert.Equal(3, map.Count);
        map.Protect(0x11000, 0x12000, RW);

        Assert.Equal([Anon(0x10000, 0x13000, RW)], map.Areas);
    }

    [Fact]
    public void Adjacent_anonymous_mappings_merge_but_files_and_shared_memory_do_not()
    {
        map.Map(Anon(0x10000, 0x11000, RW));
        map.Map(Anon(0x11000, 0x12000, RW));
        map.Map(File(0x20000, 0x21000, R, offset: 0));
        map.Map(File(0x21000, 0x22000, R, offset: 0x1000));
        map.Map(Anon(0x30000, 0x31000, RW) with { Shared = true });
        map.Map(Anon(0x31000, 0x32000, RW) with { Shared = true });

        Assert.Equal(5, map.Count);
        Assert.Equal(Anon(0x10000, 0x12000, RW), map.Areas[0]);
    }

    [Fact]
    public void Differently_named_anonymous_memory_does_not_merge()
    {
        map.Map(Anon(0x10000, 0x11000, RW) with { Name = "[heap]" });
        map.Map(Anon(0x11000, 0x12000, RW));

        Assert.Equal(2, map.Count);
    }

    [Fact]
    public void Remap_moves_the_pages_and_keeps_the_file_offset()
    {
        map.Map(File(0x10000, 0x14000, R, offset: 0x4000));

        map.Remap(0x11000, 0x2000, 0x2000, 0x50000, keepOld: false);

        Assert.Equal(
            [File(0x10000, 0x11000, R, 0x4000), File(0x13000, 0x14000, R, 0x7000), File(0x50000, 0x52000, R, 0x5000)],
            map.Areas);
    }

    [Fact]
    public void Remap_grows_in_place_or_moving()
    {
        map.Map(Anon(0x10000, 0x12000, RW));

        map.Remap(0x10000, 0x2000, 0x4000, 0x10000, keepOld: false);
        Assert.Equal([Anon(0x10000, 0x14000, RW)], map.Areas);

        map.Remap(0x10000, 0x4000, 0x6000, 0x40000, keepOld: false);
        Assert.Equal([Anon(0x40000, 0x46000, RW)], map.Areas);
    }

    [Fact]
    public void Remap_shrinks_by_dropping_the_tail()
    {
        map.Map(Anon(0x10000, 0x14000, RW));

        map.Remap(0x10000, 0x4000, 0x1000, 0x10000, keepOld: false);

        Assert.Equal([Anon(0x10000, 0x11000, RW)], map.Areas);
    }

    [Fact]
    public void Remap_onto_a_mapping_replaces_it()
    {
        map.Map(Anon(0x10000, 0x11000, RW));
        map.Map(File(0x20000, 0x23000, R, offset: 0));

        map.Remap(0x10000, 0x1000, 0x1000, 0x21000, keepOld: false);

        Assert.Equal([File(0x20000, 0x21000, R, 0), Anon(0x21000, 0x22000, RW), File(0x22000, 0x23000, R, 0x2000)], map.Areas);
    }

    [Fact]
    public void Remap_with_dontunmap_leaves_the_old_range_mapped()
    {
        map.Map(Anon(0x10000, 0x12000, RW));

        map.Remap(0x10000, 0x2000, 0x2000, 0x40000, keepOld: true);

        Assert.Equal([Anon(0x10000, 0x12000, RW), Anon(0x40000, 0x42000, RW)], map.Areas);
    }

    [Fact]
    public void Remap_of_length_zero_duplicates_a_shared_mapping()
    {
        var shared = File(0x10000, 0x14000, RW, offset: 0) with { Shared = true };
        map.Map(shared);

        map.Remap(0x11000, 0, 0x2000, 0x40000, keepOld: false);

        Assert.Equal([shared, shared with { Start = 0x40000, End = 0x42000, Offset = 0x1000 }], map.Areas);
    }

    [Fact]
    public void Find_returns_the_area_containing_an_address()
    {
        map.Map(Anon(0x10000, 0x12000, RW));
        map.Map(Anon(0x20000, 0x21000, R));

        Assert.Equal(0x10000UL, map.Find(0x11fff)?.Start);
        Assert.Equal(0x20000UL, map.Find(0x20000)?.Start);
        Assert.Null(map.Find(0x12000));
        Assert.Null(map.Find(0xffff));
    }

    [Fact]
    public void A_clone_is_independent()
    {
        map.Map(Anon(0x10000, 0x12000, RW));
        var clone = map.Clone(a => a);

        clone.Unmap(0x10000, 0x11000);
        map.Map(Anon(0x30000, 0x31000, R));

        Assert.Equal([Anon(0x10000, 0x12000, RW), Anon(0x30000, 0x31000, R)], map.Areas);
        Assert.Equal([Anon(0x11000, 0x12000, RW)], clone.Areas);
    }

    [Fact]
    public void Misaligned_or_empty_ranges_are_refused_without_a_change()
    {
        map.Map(Anon(0x10000, 0x12000, RW));

        Assert.Throws<ArgumentException>(() => map.Unmap(0x10001, 0x11000));
        Assert.Throws<ArgumentException>(() => map.Protect(0x11000, 0x11000, R));
        Assert.Throws<ArgumentException>(() => map.Map(Anon(0x20000, 0x20800, R)));
        Assert.Throws<ArgumentException>(() => map.Remap(0x30000, 0, 0x1000, 0x40000, keepOld: false));

        Assert.Equal([Anon(0x10000, 0x12000, RW)], map.Areas);
    }

    [Fact]
    public void Many_random_operations_keep_the_map_sorted_disjoint_and_page_exact()
    {
        // A page-by-page model of the same space: the map must always describe exactly the same pages.
        const int pages = 64;
        var model = new (int Prot, bool Mapped)[pages];
        var random = new Random(1234);
        for (int step = 0; step < 2000; step++)
        {
            int first = random.Next(pages), count = random.Next(1, pages - first + 1), prot = random.Next(1, 8);
            ulong start = Page(first), end = Page(first + count);
            switch (random.Next(3))
            {
                case 0:
                    map.Map(Anon(start, end, prot));
                    for (int p = first; p < first + count; p++)
                        model[p] = (prot, true);
                    break;
                case 1:
                    map.Unmap(start, end);
                    for (int p = first; p < first + count; p++)
                        model[p] = default;
                    break;
                default:
                    map.Protect(start, end, prot);
                    for (int p = first; p < first + count; p++)
                    {
                        if (model[p].Mapped)
                            model[p].Prot = prot;
                    }
                    break;
            }

            var areas = map.Areas;
            for (int i = 1; i < areas.Count; i++)
            {
                Assert.True(areas[i - 1].End <= areas[i].Start, $"step {step}: areas overlap or are out of order");
                Assert.False(areas[i - 1].MergesWith(areas[i]), $"step {step}: mergeable neighbours were left apart");
            }
            for (int p = 0; p < pages; p++)
                Assert.Equal(model[p].Mapped ? model[p].Prot : (int?)null, map.Find(Page(p))?.Prot);
        }
    }

    private static ulong Page(int n) => 0x100000 + (ulong)n * VmaMap.PageSize;

    // Private mappings as mmap makes them: committed when writable.
    private static Area Anon(ulong start, ulong end, int prot) => new(start, end, prot, false, true, 0, null, Accounted: (prot & RW & ~R) != 0);

    private static Area File(ulong start, ulong end, int prot, long offset) =>
        new(start, end, prot, false, false, offset, null, Accounted: (prot & RW & ~R) != 0);
}
