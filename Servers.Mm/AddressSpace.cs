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

    // The start of the break is not announced: it is the first break seen (execve's brk(0) query, as libc makes).
    private ulong? brkStart;
    private ulong brk;

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

    /// <summary>A space as a checkpoint keeps it: its areas and its break.</summary>
    internal sealed record Saved(IReadOnlyList<Area> Areas, ulong? BrkStart, ulong Brk, int Users);

    public Saved Save() => new(Vmas.Areas, brkStart, brk, Users);

    public static AddressSpace Load(Saved saved)
    {
        var space = new AddressSpace(new VmaMap(), saved.BrkStart, saved.Brk) { Users = saved.Users };
        foreach (var area in saved.Areas ?? []) space.Vmas.Map(area);
        return space;
    }

    /// <summary>How many processes refer to this space (more than one after CLONE_VM or vfork).</summary>
    public int Users { get; set; } = 1;

    /// <summary>
    /// A new space holding what execve mapped, as /proc/PID/maps showed it. Names in brackets ([stack], [vdso],
    /// [vvar]) and unnamed areas are anonymous; private writable ones are committed, as Linux accounts them.
    /// </summary>
    public static AddressSpace FromImage(IEnumerable<Vma> image)
    {
        var space = new AddressSpace();
        foreach (var v in image)
        {
            bool anonymous = v.Name is null || v.Name.StartsWith('[');
            var area = new Area(v.Start, v.End, Prot(v.Prot), v.Shared, anonymous, anonymous ? 0 : v.Offset, v.Name,
                Accounted: v.Shared ? anonymous : (v.Prot & PROT_WRITE) != 0);
            space.Vmas.Map(area);
        }
        return space;
    }

    /// <summary>
    /// A copy for fork without CLONE_VM. The child's private memory is committed again (dup_mmap charges every
    /// VM_ACCOUNT area); shared anonymous memory is one object that the parent already paid for.
    /// </summary>
    public AddressSpace Fork() =>
        new(Vmas.Clone(a => a.Shared && a.Anonymous ? a with { Accounted = false } : a), brkStart, brk);

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
                    Accounted: Accounts(e.Flags, e.Fd, e.Prot), NoReserve: (e.Flags & MAP_NORESERVE) != 0));
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
                Vmas.Map(new Area(at, checked(at + VmaMap.PageAlign(e.Length)), Prot(e.Prot), Shared: true, Anonymous: false, Offset: 0, Name: null));
                break;
            default:
                throw new ArgumentException($"unknown memory call {e.Op}");
        }
    }

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

    /// <summary>The heap is one private anonymous area from the page of the first break to the page holding the
    /// current one; a new break grows or shrinks it (a failed brk returns the old break and changes nothing).</summary>
    private void Brk(ulong newBrk)
    {
        if (brkStart is not ulong first)
        {
            brkStart = brk = newBrk;
            return;
        }
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
