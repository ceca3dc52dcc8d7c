using UmlMicro.Contracts.Servers;

namespace UmlMicro.Servers.Mm;

/// <summary>
/// An address space (Linux's mm_struct): its mappings and its program break. Processes made with CLONE_VM or
/// vfork refer to the same one. It changes only by replaying memory calls that the host already carried out.
/// </summary>
internal sealed class AddressSpace
{
    // The Linux values of the flags a memory call carries that change what a mapping is.
    public const int PROT_READ = 1, PROT_WRITE = 2, PROT_EXEC = 4;
    public const int MAP_SHARED = 0x01, MAP_SHARED_VALIDATE = 0x03, MAP_TYPE = 0x0f, MAP_ANONYMOUS = 0x20;
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

    /// <summary>A deep copy, for fork without CLONE_VM.</summary>
    public AddressSpace Fork() => new(Vmas.Clone(), brkStart, brk);

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
                bool anonymous = e.Fd < 0 || (e.Flags & MAP_ANONYMOUS) != 0;
                int type = e.Flags & MAP_TYPE;
                Vmas.Map(new Area(start, checked(start + VmaMap.PageAlign(e.Length)), Prot(e.Prot),
                    Shared: type is MAP_SHARED or MAP_SHARED_VALIDATE, anonymous, anonymous ? 0 : e.Offset, Name: null));
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
            default:
                throw new ArgumentException($"unknown memory call {e.Op}");
        }
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
            Vmas.Map(new Area(oldEnd, newEnd, PROT_READ | PROT_WRITE, Shared: false, Anonymous: true, Offset: 0, HeapName));
        else if (newEnd < oldEnd)
            Vmas.Unmap(newEnd, oldEnd);
        brk = newBrk;
    }

    // Only read, write and exec show in a mapping; PROT_GROWSDOWN and the like are requests, not states.
    private static int Prot(int prot) => prot & (PROT_READ | PROT_WRITE | PROT_EXEC);
}
