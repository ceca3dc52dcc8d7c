using UmlMicro.Contracts.Servers;

namespace UmlMicro.Servers.Mm;

/// <summary>
/// An address space (Linux's mm_struct): its mappings and its program break. Processes made with CLONE_VM or
/// vfork refer to the same one. It starts from what execve mapped (as the host showed it) and changes only by
/// replaying memory calls that the host already carried out; <see cref="Charge"/> tells, before the host runs a
/// call, how much it would commit.
/// </summary>
internal sealed class AddressSpace
{
    // The Linux values of the flags a memory call carries that change what a mapping is.
    public const int PROT_READ = 1, PROT_WRITE = 2, PROT_EXEC = 4;
    public const int MAP_SHARED = 0x01, MAP_SHARED_VALIDATE = 0x03, MAP_TYPE = 0x0f, MAP_FIXED = 0x10, MAP_ANONYMOUS = 0x20;
    public const int MAP_NORESERVE = 0x4000, MAP_FIXED_NOREPLACE = 0x100000;
    public const int MREMAP_DONTUNMAP = 4;

    public const string HeapName = "[heap]";

    // Where the heap starts (Linux's start_brk), chosen by this server when the space is exec'd; null for a space
    // whose image holds no program (it has no heap: brk never moves). The break itself starts there.
    private ulong? brkStart;
    private ulong brk;
    // Free ranges granted to processes of this space for their mmap(NULL) placements, by pid: not to be granted twice.
    private readonly Dictionary<int, PlacementWindow> windows = new();

    /// <summary>The largest window granted at once: placements need a round trip only once per this much memory.</summary>
    public const ulong WindowSize = 1UL << 30;

    /// <summary>Below the stack, Linux keeps at least this gap to mmap_base (mmap_base(): the minimum stack gap).</summary>
    private const ulong MinStackGap = 128UL << 20;

    /// <summary>Linux's stack_guard_gap (256 pages): a break may not come closer than this to a stack below it.</summary>
    private const ulong StackGuardGap = 256 * VmaMap.PageSize;

    /// <summary>The top of a 4-level x86-64 user space (Linux's TASK_SIZE_MAX, a page short of 2^47).</summary>
    private const ulong TaskSize = (1UL << 47) - VmaMap.PageSize;

    /// <summary>Linux's ELF_ET_DYN_BASE on x86-64 (2/3 of the space), page aligned: where a program loaded top-down (an
    /// ELF interpreter run directly, a static PIE) gets its heap, away from the mmap region it lies in.</summary>
    private const ulong EtDynBase = (((1UL << 47) - VmaMap.PageSize) / 3 * 2 + VmaMap.PageSize - 1) & ~(VmaMap.PageSize - 1);

    /// <summary>How many pages above the program the heap may start (arch_randomize_brk: within 1 GiB on x86-64).</summary>
    public const ulong HeapRandomPages = 1UL << 18;

    /// <summary>Linux's mmap_min_addr: nothing is placed below it.</summary>
    private const ulong MinAddress = 0x10000;

    /// <summary>How far from the stack the image's top-down mappings can lie: Linux randomises mmap_base by up to
    /// 2^28 pages (mmap_rnd_bits) below the stack gap; the program itself lies much lower (2/3 of the space).</summary>
    private const ulong TopDownReach = (1UL << 40) + (1UL << 32);

    public AddressSpace() : this(new VmaMap(), null, 0)
    {
    }

    private AddressSpace(VmaMap vmas, ulong? brkStart, ulong brk)
    {
        Vmas = vmas;
        this.brkStart = brkStart;
        this.brk = brk;
    }

    public VmaMap Vmas { get; }

    /// <summary>
    /// Where top-down placement starts (Linux's mmap_base): below the lowest mapping that execve placed top-down
    /// (the interpreter, the vdso), or the minimum gap below the stack when there is none; lowered by a random
    /// number of pages unless the layout is deterministic.
    /// </summary>
    public ulong MmapBase { get; private set; }

    /// <summary>A space as a checkpoint keeps it: its areas, its break, its mmap base and the windows it granted.</summary>
    internal sealed record Saved(IReadOnlyList<Area> Areas, ulong? BrkStart, ulong Brk, int Users, ulong MmapBase = 0,
        IReadOnlyDictionary<int, PlacementWindow>? Windows = null);

    public Saved Save() => new(Vmas.Areas, brkStart, brk, Users, MmapBase, new Dictionary<int, PlacementWindow>(windows));

    public static AddressSpace Load(Saved saved)
    {
        var space = new AddressSpace(new VmaMap(), saved.BrkStart, saved.Brk) { Users = saved.Users, MmapBase = saved.MmapBase };
        foreach (var area in saved.Areas ?? []) space.Vmas.Map(area);
        foreach (var (vpid, window) in saved.Windows ?? new Dictionary<int, PlacementWindow>()) space.windows[vpid] = window;
        return space;
    }

    /// <summary>How many processes refer to this space (more than one after CLONE_VM or vfork).</summary>
    public int Users { get; set; } = 1;

    /// <summary>
    /// A new space holding what execve mapped, as /proc/PID/maps showed it. Names in brackets ([stack], [vdso],
    /// [vvar]) and unnamed areas are anonymous; private writable ones are committed, as Linux accounts them.
    /// </summary>
    public static AddressSpace FromImage(IEnumerable<Vma> image, ulong randomPages = 0, ulong? heapRandomPages = null)
    {
        var space = new AddressSpace();
        var areas = image.OrderBy(v => v.Start).ToList();
        foreach (var v in image)
        {
            bool anonymous = v.Name is null || v.Name.StartsWith('[');
            var backing = anonymous ? null : new MmBacking(v.Name!, v.DevMajor, v.DevMinor, v.Inode);
            var area = new Area(v.Start, v.End, Prot(v.Prot), v.Shared, anonymous, anonymous ? 0 : v.Offset, v.Name,
                Accounted: v.Shared ? anonymous : (v.Prot & PROT_WRITE) != 0, Backing: backing);
            space.Vmas.Map(area);
        }
        space.MmapBase = Base(areas, randomPages);
        space.brkStart = space.HeapStart(areas, heapRandomPages);
        space.brk = space.brkStart ?? 0;
        return space;
    }

    /// <summary>
    /// Where the heap of a new image starts, as Linux's load_elf_binary places start_brk: at the end of the program's
    /// data (its last mapping and the anonymous .bss right after it), or at ELF_ET_DYN_BASE for a program that lies
    /// in the top-down region (an ELF interpreter run directly, a static PIE), where its heap cannot run into the
    /// mappings above it. With <paramref name="randomPages"/> (a layout that is not deterministic) a heap after the
    /// .bss starts one page further, and any heap that many pages higher, as arch_randomize_brk moves it; a start
    /// that would fall on the image stays unmoved. The program is the image's lowest file mapping.
    /// </summary>
    private ulong? HeapStart(List<Vma> image, ulong? randomPages)
    {
        var program = image.FirstOrDefault(v => v.Name is { } n && !n.StartsWith('['));
        if (program is null) return null;
        int last = image.FindLastIndex(v => v.Name == program.Name);
        ulong end = image[last].End;
        if (last + 1 < image.Count && image[last + 1] is { Name: null, Shared: false } bss && bss.Start == end && (bss.Prot & PROT_WRITE) != 0)
            end = bss.End;
        bool topDown = MmapBase != 0 && program.Start >= MmapBase;
        if (topDown) end = EtDynBase;
        if (randomPages is not ulong pages) return end;
        ulong shifted = (topDown ? end : end + VmaMap.PageSize) + pages % HeapRandomPages * VmaMap.PageSize;
        return shifted < TaskSize && Vmas.Find(shifted) is null ? shifted : end;
    }

    private static ulong Base(List<Vma> image, ulong randomPages)
    {
        ulong top = image.FirstOrDefault(v => v.Name == "[stack]")?.Start ?? image.Select(v => v.End).Where(e => e < 1UL << 47).DefaultIfEmpty(1UL << 47).Max();
        ulong lowest = top > MinStackGap ? top - MinStackGap : top;
        ulong reach = top > TopDownReach ? top - TopDownReach : 0;
        foreach (var v in image)
            if (v.Start >= reach && v.Start < top && v.Name is not ("[stack]" or "[vsyscall]"))
                lowest = Math.Min(lowest, v.Start);
        ulong shift = randomPages * VmaMap.PageSize;
        return lowest > shift + MinAddress ? lowest - shift : lowest;
    }

    /// <summary>
    /// Grants pid <paramref name="vpid"/> the highest free range below the mmap base that holds
    /// <paramref name="length"/> bytes at a multiple of <paramref name="align"/>, up to <see cref="WindowSize"/>
    /// (top-down first fit, as Linux's unmapped_area_topdown); the pid's earlier window is given back first.
    /// Areas and the other pids' windows are taken. An empty range when nothing fits.
    /// </summary>
    public (ulong Start, ulong End) Window(int vpid, ulong length, ulong align)
    {
        windows.Remove(vpid);
        length = VmaMap.PageAlign(length);
        align = Math.Max(align, VmaMap.PageSize);
        var taken = Vmas.Areas.Select(a => (a.Start, a.End)).Concat(windows.Values.Select(w => (w.Start, w.End))).OrderByDescending(r => r.End).ToList();
        ulong top = MmapBase;
        foreach (var (start, end) in taken.Append((0UL, MinAddress)))
        {
            if (end < top && Fits(end, top, length, align))
            {
                var window = (Start: Math.Max(end, top - Math.Max(WindowSize, length + align)), End: top);
                windows[vpid] = new PlacementWindow(window.Start, window.End);
                return window;
            }
            top = Math.Min(top, start);
        }
        return (0, 0);
    }

    private static bool Fits(ulong start, ulong end, ulong length, ulong align) =>
        end - start >= length && ((end - length) & ~(align - 1)) >= start;

    /// <summary>The pid no longer places in this space (it exited or exec'd): its window is free again.</summary>
    public void DropWindow(int vpid) => windows.Remove(vpid);

    /// <summary>
    /// A copy for fork without CLONE_VM. The child's private memory is committed again (dup_mmap charges every
    /// VM_ACCOUNT area); shared anonymous memory is one object that the parent already paid for. Areas advised
    /// MADV_DONTFORK are not copied (nor charged); MADV_WIPEONFORK ones are, as they are mapped in the child too.
    /// </summary>
    public AddressSpace Fork() =>
        new(Vmas.Clone(a => a.DontCopy ? null : a.Shared && a.Anonymous ? a with { Accounted = false } : a), brkStart, brk) { MmapBase = MmapBase };

    /// <summary>
    /// What the call <paramref name="e"/> would add to the committed memory if the host ran it now (its Result is
    /// not looked at): the charge Linux takes at mmap, brk, mprotect and mremap, less what a MAP_FIXED mapping
    /// replaces. An extent the host would refuse charges nothing: the host's own error stands.
    /// </summary>
    public ulong Charge(MmEvent e)
    {
        try
        {
            switch (e.Op)
            {
                case MmOp.Mmap:
                    if (!Accounts(e.Flags, e.Fd, e.Prot)) return 0;
                    ulong length = VmaMap.PageAlign(e.Length);
                    bool replaces = (e.Flags & MAP_FIXED) != 0 && (e.Flags & MAP_FIXED_NOREPLACE) == 0 && VmaMap.IsPageAligned(e.Addr);
                    ulong replaced = replaces ? Vmas.ChargeIn(e.Addr, checked(e.Addr + length)) : 0;
                    return length > replaced ? length - replaced : 0;
                case MmOp.Brk:
                    if (brkStart is not ulong first) return 0;
                    ulong heapStart = VmaMap.PageAlign(first);
                    ulong oldEnd = Math.Max(VmaMap.PageAlign(brk), heapStart), newEnd = Math.Max(VmaMap.PageAlign(e.Addr), heapStart);
                    return newEnd > oldEnd ? newEnd - oldEnd : 0;
                case MmOp.Mprotect:
                    return VmaMap.IsPageAligned(e.Addr) && e.Length > 0
                        ? Vmas.ProtectCharge(e.Addr, checked(e.Addr + VmaMap.PageAlign(e.Length)), Prot(e.Prot)) : 0;
                case MmOp.Mremap:
                    ulong oldLength = VmaMap.PageAlign(e.Length), newLength = VmaMap.PageAlign(e.NewLength);
                    if (oldLength == 0 || Vmas.Find(e.Addr) is not { } area) return 0;
                    ulong grown = newLength > oldLength && area.Accounted ? newLength - oldLength : 0;
                    ulong kept = (e.Flags & MREMAP_DONTUNMAP) != 0 ? Vmas.ChargeIn(e.Addr, checked(e.Addr + oldLength)) : 0;
                    return grown + kept;
                case MmOp.Shmget:
                    return SegmentCharge(e.Length, e.Flags);
                case MmOp.Fork:
                    return Vmas.Areas.Where(a => a.Accounted && !(a.Shared && a.Anonymous) && !a.DontCopy).Aggregate(0UL, (sum, a) => sum + a.Size);
                default:
                    return 0;
            }
        }
        catch (Exception ex) when (ex is ArgumentException or OverflowException)
        {
            return 0;
        }
    }

    /// <summary>
    /// Replays a memory call that succeeded on the host. Lengths are rounded up to pages as the kernel rounds
    /// them; an extent the host would have refused (misaligned, empty, wrapping) is an ArgumentException.
    /// </summary>
    public void Apply(MmEvent e)
    {
        switch (e.Op)
        {
            case MmOp.Mmap:
                ulong start = (ulong)e.Result;
                bool anonymous = IsAnonymous(e.Flags, e.Fd);
                int type = e.Flags & MAP_TYPE;
                Vmas.Map(new Area(start, checked(start + VmaMap.PageAlign(e.Length)), Prot(e.Prot),
                    Shared: type is MAP_SHARED or MAP_SHARED_VALIDATE, anonymous, anonymous ? 0 : e.Offset, Name: null,
                    Accounted: Accounts(e.Flags, e.Fd, e.Prot), NoReserve: (e.Flags & MAP_NORESERVE) != 0, Backing: e.Backing));
                break;
            case MmOp.Munmap:
                Vmas.Unmap(e.Addr, checked(e.Addr + VmaMap.PageAlign(e.Length)));
                break;
            case MmOp.Mprotect:
                Vmas.Protect(e.Addr, checked(e.Addr + VmaMap.PageAlign(e.Length)), Prot(e.Prot));
                break;
            case MmOp.Mremap:
                Vmas.Remap(e.Addr, VmaMap.PageAlign(e.Length), VmaMap.PageAlign(e.NewLength), (ulong)e.Result,
                    keepOld: (e.Flags & MREMAP_DONTUNMAP) != 0);
                break;
            case MmOp.Brk:
                Brk((ulong)e.Result);
                break;
            case MmOp.Shmat:
                // A segment is a shmem object, committed once by shmget in Linux, not by each attach.
                ulong at = (ulong)e.Result;
                Vmas.Map(new Area(at, checked(at + VmaMap.PageAlign(e.Length)), Prot(e.Prot), Shared: true, Anonymous: false, Offset: 0, Name: null,
                    Backing: e.Backing));
                break;
            case MmOp.Madvise:
                if (e.Length > 0 && Advice(e.Flags) is { } change)
                    Vmas.Modify(e.Addr, checked(e.Addr + VmaMap.PageAlign(e.Length)), change);
                break;
            case MmOp.Fork:
            case MmOp.Shmget:
            case MmOp.ShmDestroy:
                break; // the copy is mm/space_created's, a segment the server's (MmServer): the record only settles the charge
            default:
                throw new ArgumentException($"unknown memory call {e.Op}");
        }
    }

    public const int MADV_DONTFORK = 10, MADV_DOFORK = 11, MADV_WIPEONFORK = 18, MADV_KEEPONFORK = 19;

    /// <summary>What madvise's <paramref name="advice"/> does to an area, for the advice that changes what fork does;
    /// null for advice that leaves the map as it is. WIPEONFORK holds only for private anonymous memory (the host
    /// refuses it elsewhere with EINVAL, and a refused call is not applied).</summary>
    private static Func<Area, Area>? Advice(int advice) => advice switch
    {
        MADV_DONTFORK => a => a with { DontCopy = true },
        MADV_DOFORK => a => a with { DontCopy = false },
        MADV_WIPEONFORK => a => a with { WipeOnFork = true },
        MADV_KEEPONFORK => a => a with { WipeOnFork = false },
        _ => null,
    };

    public const int SHM_HUGETLB = 0x800, SHM_NORESERVE = 0x1000;

    /// <summary>What a new System V segment of <paramref name="size"/> bytes commits: its pages, as newseg charges
    /// them (shmem_acct_size), unless it is made with SHM_NORESERVE or of huge pages (accounted apart, as hugetlbfs).</summary>
    public static ulong SegmentCharge(ulong size, int flags) =>
        (flags & (SHM_NORESERVE | SHM_HUGETLB)) != 0 || size == 0 ? 0 : VmaMap.PageAlign(size);

    private static bool IsAnonymous(int flags, int fd) => fd < 0 || (flags & MAP_ANONYMOUS) != 0;

    /// <summary>
    /// Whether Linux counts a new mapping as committed: private writable memory (anonymous or a file's private
    /// copy) and shared anonymous memory (a shmem object), unless MAP_NORESERVE. Shared file mappings are backed
    /// by their file and read-only private ones cannot be written, so neither commits anything.
    /// </summary>
    private static bool Accounts(int flags, int fd, int prot)
    {
        if ((flags & MAP_NORESERVE) != 0) return false;
        bool shared = (flags & MAP_TYPE) is MAP_SHARED or MAP_SHARED_VALIDATE;
        return shared ? IsAnonymous(flags, fd) : (prot & PROT_WRITE) != 0;
    }

    /// <summary>
    /// brk(<paramref name="addr"/>) as Linux's sys_brk decides it: a break below the heap's start (brk(0), the query
    /// libc makes) or past the top of the space is refused and answered with the break; a shrink is always allowed
    /// (its pages are unmapped) if some mapping is left to unmap; a growth needs its pages free and one page beyond
    /// them, and the stack's guard gap when the next mapping is the stack. Nothing changes here: the outcome comes
    /// back as a MmOp.Brk record.
    /// </summary>
    public BrkPlan PlanBrk(ulong addr)
    {
        ulong current = brk;
        var refused = new BrkPlan(current, current, 0, 0, 0, 0);
        if (brkStart is not ulong first || addr < first || addr > TaskSize) return refused;
        ulong newEnd = VmaMap.PageAlign(addr), oldEnd = VmaMap.PageAlign(current);
        if (newEnd == oldEnd) return refused with { Break = addr };
        if (addr <= current)
            return Vmas.FirstEndingAfter(newEnd) is { } inside && inside.Start < oldEnd ? refused with { Break = addr, UnmapStart = newEnd, UnmapEnd = oldEnd } : refused;
        if (Vmas.FirstEndingAfter(oldEnd) is { } next)
        {
            ulong gap = next.Name == "[stack]" ? StackGuardGap : 0;
            if (checked(newEnd + VmaMap.PageSize) > (next.Start > gap ? next.Start - gap : 0)) return refused;
        }
        return refused with { Break = addr, MapStart = oldEnd, MapEnd = newEnd };
    }

    /// <summary>The heap is one private anonymous area from the heap's start to the page holding the break; a new
    /// break grows or shrinks it (a refused brk reports the old break and changes nothing).</summary>
    private void Brk(ulong newBrk)
    {
        if (brkStart is not ulong first)
        {
            if (newBrk != 0) throw new ArgumentException($"a space without a heap has no break to move to 0x{newBrk:x}");
            return;
        }
        if (newBrk < first) throw new ArgumentException($"a break (0x{newBrk:x}) below the heap's start (0x{first:x})");
        ulong heapStart = VmaMap.PageAlign(first);
        ulong oldEnd = Math.Max(VmaMap.PageAlign(brk), heapStart);
        ulong newEnd = Math.Max(VmaMap.PageAlign(newBrk), heapStart);
        if (newEnd > oldEnd)
            Vmas.Map(new Area(oldEnd, newEnd, PROT_READ | PROT_WRITE, Shared: false, Anonymous: true, Offset: 0, HeapName, Accounted: true));
        else if (newEnd < oldEnd)
            Vmas.Unmap(newEnd, oldEnd);
        brk = newBrk;
    }

    // Only read, write and exec show in a mapping; PROT_GROWSDOWN and the like are requests, not states.
    private static int Prot(int prot) => prot & (PROT_READ | PROT_WRITE | PROT_EXEC);
}
