using UmlMicro.Contracts.Servers;

namespace UmlMicro.Servers.Mm;

/// <summary>
/// One mapping of an address space: [<paramref name="Start"/>, <paramref name="End"/>), page aligned. A file
/// mapping's <paramref name="Offset"/> is the file offset of its first page; an anonymous one has offset 0, as
/// /proc/PID/maps shows it. <paramref name="Accounted"/> is Linux's VM_ACCOUNT: the area's pages count as committed
/// memory (private writable memory, shared anonymous memory), and stay counted when they later lose write
/// permission. <paramref name="NoReserve"/> is VM_NORESERVE (MAP_NORESERVE): never counted, not even when made writable.
/// <paramref name="Backing"/> is the object a shared anonymous or System V mapping maps (a shmem file, named by the
/// host); a file mapping's name, device and inode are in <paramref name="Name"/> and <paramref name="Backing"/>.
/// <paramref name="DontCopy"/> is VM_DONTCOPY (MADV_DONTFORK): fork leaves the area out of the child.
/// <paramref name="WipeOnFork"/> is VM_WIPEONFORK (MADV_WIPEONFORK): the child gets it, empty; the map is the same.
/// </summary>
internal sealed record Area(ulong Start, ulong End, int Prot, bool Shared, bool Anonymous, long Offset, string? Name,
    bool Accounted = false, bool NoReserve = false, MmBacking? Backing = null, bool DontCopy = false, bool WipeOnFork = false)
{
    public ulong Size => End - Start;

    /// <summary>The bytes this area adds to the committed total.</summary>
    public ulong Charge => Accounted ? Size : 0;

    public Vma ToVma() => Backing is { } b
        ? new(Start, End, Prot, Shared, Offset, Name ?? b.Name, b.DevMajor, b.DevMinor, b.Inode)
        : new(Start, End, Prot, Shared, Offset, Name);

    /// <summary>The part [start, end) of this area: a file mapping's offset moves with the start.</summary>
    public Area Slice(ulong start, ulong end) =>
        this with { Start = start, End = end, Offset = Anonymous ? 0 : Offset + (long)(start - Start) };

    /// <summary>The same pages at another address (mremap moves pages, not file offsets).</summary>
    public Area MovedTo(ulong start) => this with { Start = start, End = start + (End - Start) };

    /// <summary>Whether <paramref name="next"/> continues this area so that Linux would keep one VMA: only for
    /// private anonymous memory, whose neighbours are indistinguishable. File and shared mappings stay apart,
    /// since this map does not know whether they are the same object.</summary>
    public bool MergesWith(Area next) =>
        End == next.Start && Anonymous && next.Anonymous && !Shared && !next.Shared && Prot == next.Prot && Name == next.Name
        && Accounted == next.Accounted && NoReserve == next.NoReserve && Backing == next.Backing
        && DontCopy == next.DontCopy && WipeOnFork == next.WipeOnFork;
}

/// <summary>
/// The mappings of one address space, in address order and never overlapping (Linux's VMA tree, kept here as a
/// sorted list: a process has tens to a few thousand mappings). It replays what the host did: every change is
/// exact to the page, splitting areas where a change covers only part of them and merging private anonymous
/// neighbours that become identical, as Linux's vma_merge does.
/// </summary>
internal sealed class VmaMap
{
    public const ulong PageSize = 4096;

    private readonly SortedList<ulong, Area> areas = new();

    public int Count => areas.Count;

    /// <summary>Bytes mapped (Linux's total_vm, in bytes).</summary>
    public ulong Mapped { get; private set; }

    /// <summary>Bytes of accounted areas: what this space adds to the guest's committed memory.</summary>
    public ulong Committed { get; private set; }

    /// <summary>A snapshot of the areas, in address order.</summary>
    public IReadOnlyList<Area> Areas => [.. areas.Values];

    /// <summary>A length rounded up to whole pages, as the kernel rounds the lengths of memory calls.</summary>
    public static ulong PageAlign(ulong length) => checked(length + PageSize - 1) & ~(PageSize - 1);

    public static bool IsPageAligned(ulong address) => (address & (PageSize - 1)) == 0;

    /// <summary>A copy that shares nothing mutable with this map (fork without CLONE_VM), each area passed through
    /// <paramref name="copyOf"/>; an area it maps to null is left out.</summary>
    public VmaMap Clone(Func<Area, Area?> copyOf)
    {
        var copy = new VmaMap();
        foreach (var area in areas.Values)
            if (copyOf(area) is { } copied) copy.Put(copied);
        return copy;
    }

    /// <summary>Passes the parts of areas inside [start, end) through <paramref name="change"/> (holes stay holes),
    /// splitting the areas at its edges and merging what became alike, as madvise's flag changes do.</summary>
    public void Modify(ulong start, ulong end, Func<Area, Area> change)
    {
        CheckRange(start, end);
        SplitAt(start);
        SplitAt(end);
        for (int i = IndexEndingAfter(start); i < areas.Count && areas.Values[i].Start < end; i++)
            Replace(i, change(areas.Values[i]));
        MergeAround(start, end);
    }

    /// <summary>The area that contains <paramref name="address"/>, if any.</summary>
    public Area? Find(ulong address)
    {
        int i = IndexEndingAfter(address);
        return i < areas.Count && areas.Values[i].Start <= address ? areas.Values[i] : null;
    }

    /// <summary>The first area that ends after <paramref name="address"/> (the one containing it, or the next one above).</summary>
    public Area? FirstEndingAfter(ulong address)
    {
        int i = IndexEndingAfter(address);
        return i < areas.Count ? areas.Values[i] : null;
    }

    /// <summary>Maps <paramref name="area"/>, replacing whatever it overlaps, as mmap with MAP_FIXED does.</summary>
    public void Map(Area area)
    {
        CheckRange(area.Start, area.End);
        Unmap(area.Start, area.End);
        Put(area);
        MergeAround(area.Start, area.End);
    }

    /// <summary>Removes [start, end); areas reaching outside it keep their outer parts.</summary>
    public void Unmap(ulong start, ulong end) => Cut(start, end);

    /// <summary>Gives [start, end) the protection <paramref name="prot"/>, splitting the areas at its edges.</summary>
    public void Protect(ulong start, ulong end, int prot)
    {
        CheckRange(start, end);
        SplitAt(start);
        SplitAt(end);
        for (int i = IndexEndingAfter(start); i < areas.Count && areas.Values[i].Start < end; i++)
        {
            var area = areas.Values[i];
            Replace(i, area with { Prot = prot, Accounted = area.Accounted || ChargedWhenProtected(area, prot) });
        }
        MergeAround(start, end);
    }

    /// <summary>What mprotect to <paramref name="prot"/> would newly commit in [start, end) (mprotect_fixup's charge).</summary>
    public ulong ProtectCharge(ulong start, ulong end, int prot)
    {
        ulong charge = 0;
        foreach (var piece in Copy(start, end))
            if (!piece.Accounted && ChargedWhenProtected(piece, prot))
                charge += piece.Size;
        return charge;
    }

    /// <summary>Bytes of accounted areas inside [start, end).</summary>
    public ulong ChargeIn(ulong start, ulong end)
    {
        ulong charge = 0;
        foreach (var piece in Copy(start, end))
            charge += piece.Charge;
        return charge;
    }

    /// <summary>Linux charges a private mapping that becomes writable, unless it was made with MAP_NORESERVE.</summary>
    private static bool ChargedWhenProtected(Area area, int prot) =>
        (prot & AddressSpace.PROT_WRITE) != 0 && !area.Shared && !area.NoReserve;

    /// <summary>
    /// Replays mremap: the pages of [oldStart, oldStart+oldLength) now live at newStart with newLength (lengths
    /// page aligned). A shrink drops the tail, a growth extends the last area, a move carries the areas along.
    /// With <paramref name="keepOld"/> (MREMAP_DONTUNMAP) the old range stays mapped. An old length of 0 makes
    /// a second mapping of the shared area at oldStart and keeps the first, as Linux does.
    /// </summary>
    public void Remap(ulong oldStart, ulong oldLength, ulong newLength, ulong newStart, bool keepOld)
    {
        CheckRange(newStart, checked(newStart + newLength));
        if (oldLength == 0)
        {
            var source = Find(oldStart) ?? throw new ArgumentException($"no mapping at 0x{oldStart:x} to duplicate");
            var duplicate = source.Slice(oldStart, source.End);
            Map(duplicate with { Start = newStart, End = newStart + newLength });
            return;
        }
        ulong oldEnd = checked(oldStart + oldLength);
        CheckRange(oldStart, oldEnd);
        var pieces = keepOld ? Copy(oldStart, oldEnd) : Cut(oldStart, oldEnd);
        ulong keptEnd = oldStart + Math.Min(oldLength, newLength);
        var moved = new List<Area>();
        foreach (var piece in pieces)
        {
            if (piece.Start < keptEnd)
                moved.Add(piece.Slice(piece.Start, Math.Min(piece.End, keptEnd)));
        }
        if (newLength > oldLength && moved.Count > 0 && moved[^1].End == oldEnd)
            moved[^1] = moved[^1] with { End = oldEnd + (newLength - oldLength) };
        foreach (var piece in moved)
            Map(piece.MovedTo(newStart + (piece.Start - oldStart)));
    }

    /// <summary>Removes [start, end) and returns the pieces of areas that were inside it.</summary>
    private List<Area> Cut(ulong start, ulong end)
    {
        CheckRange(start, end);
        SplitAt(start);
        SplitAt(end);
        var inside = new List<Area>();
        int i = IndexEndingAfter(start);
        while (i < areas.Count && areas.Values[i].Start < end)
        {
            inside.Add(areas.Values[i]);
            Remove(i);
        }
        return inside;
    }

    /// <summary>The pieces of areas inside [start, end), left in place.</summary>
    private List<Area> Copy(ulong start, ulong end)
    {
        var inside = new List<Area>();
        for (int i = IndexEndingAfter(start); i < areas.Count && areas.Values[i].Start < end; i++)
        {
            var area = areas.Values[i];
            inside.Add(area.Slice(Math.Max(area.Start, start), Math.Min(area.End, end)));
        }
        return inside;
    }

    /// <summary>Makes <paramref name="address"/> an area boundary if it falls inside an area.</summary>
    private void SplitAt(ulong address)
    {
        int i = IndexEndingAfter(address);
        if (i == areas.Count)
            return;
        var area = areas.Values[i];
        if (area.Start >= address)
            return;
        Replace(i, area.Slice(area.Start, address));
        Put(area.Slice(address, area.End));
    }

    /// <summary>Merges neighbours in [start, end) and across its two edges.</summary>
    private void MergeAround(ulong start, ulong end)
    {
        int i = Math.Max(IndexEndingAfter(start) - 1, 0);
        while (i + 1 < areas.Count && areas.Values[i].End <= end)
        {
            var (area, next) = (areas.Values[i], areas.Values[i + 1]);
            if (area.MergesWith(next))
            {
                Remove(i + 1);
                Replace(i, area with { End = next.End });
            }
            else
            {
                i++;
            }
        }
    }

    // The three ways the list changes, so that the totals follow every change.
    private void Put(Area area)
    {
        areas.Add(area.Start, area);
        Mapped += area.Size;
        Committed += area.Charge;
    }

    private void Remove(int i)
    {
        var area = areas.Values[i];
        areas.RemoveAt(i);
        Mapped -= area.Size;
        Committed -= area.Charge;
    }

    private void Replace(int i, Area area)
    {
        var old = areas.Values[i];
        areas.SetValueAtIndex(i, area);
        Mapped = Mapped - old.Size + area.Size;
        Committed = Committed - old.Charge + area.Charge;
    }

    /// <summary>The index of the first area that ends after <paramref name="address"/> (the one containing it,
    /// or the first one above it); Count if there is none.</summary>
    private int IndexEndingAfter(ulong address)
    {
        var starts = areas.Keys;
        int lo = 0, hi = starts.Count;
        while (lo < hi)
        {
            int mid = lo + (hi - lo) / 2;
            if (starts[mid] <= address)
                lo = mid + 1;
            else
                hi = mid;
        }
        // lo is the first area starting above the address; the one before it may still contain the address.
        return lo > 0 && areas.Values[lo - 1].End > address ? lo - 1 : lo;
    }

    private static void CheckRange(ulong start, ulong end)
    {
        if (!IsPageAligned(start) || !IsPageAligned(end) || end <= start)
            throw new ArgumentException($"[0x{start:x}, 0x{end:x}) is not a non-empty page-aligned range");
    }
}
