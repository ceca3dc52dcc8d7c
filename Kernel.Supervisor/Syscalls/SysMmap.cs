using UmlMicro.Contracts.Linux;
using UmlMicro.Contracts.Servers;
using UmlMicro.Contracts.Syscalls;
using UmlMicro.Supervisor.Guest;
using UmlMicro.Supervisor.Native;

namespace UmlMicro.Supervisor.Syscalls;

/// <summary>
/// Memory calls: the host maps, the MM server keeps the map of every address space from what the host did and
/// governs the guest's commit limit. Under a limit (--mem), a call that would commit memory is paid for from the
/// supervisor's <see cref="CommitBudget"/> at its entry stop, before the host runs it; one the limit does not allow
/// fails with ENOMEM, and brk, as Linux's, returns the old break instead. brk is the kernel's own (see
/// <see cref="Brk"/>): the host's break never moves.
/// </summary>
internal static class SysMmap
{
    public static void Register(Dictionary<string, EntryHandler> h)
    {
        h["brk"] = Brk;
        h["mmap"] = c => Enter(c, MmOp.Mmap, c.Arg(0), c.Arg(1), 0, c.IntArg(2), c.IntArg(3), c.IntArg(4), c.LongArg(5));
        h["munmap"] = c => Enter(c, MmOp.Munmap, c.Arg(0), c.Arg(1), 0, 0, 0, -1, 0);
        h["mprotect"] = c => Enter(c, MmOp.Mprotect, c.Arg(0), c.Arg(1), 0, c.IntArg(2), 0, -1, 0);
        h["mremap"] = c => Enter(c, MmOp.Mremap, c.Arg(0), c.Arg(1), c.Arg(2), 0, c.IntArg(3), -1, 0);
        h["shmat"] = c => c.AtExit(Shmat);
        h["shmdt"] = Shmdt;
        h["madvise"] = Madvise;
        h["shmget"] = Shmget;
        h["shmctl"] = Shmctl;
    }

    /// <summary>
    /// Pays for a call from the commit budget; when the budget cannot, System V segments that went without a call the
    /// kernel saw (removed ones whose last attacher exited) are released first, and the call is asked about again.
    /// </summary>
    private static bool TryCharge(SyscallCall c, MmEvent e, out long charged) =>
        c.Kernel.Commit.TryCharge(e, out charged) || (c.Kernel.Shm.Sweep(c.Kernel, c.Task.Vpid) && c.Kernel.Commit.TryCharge(e, out charged));

    private const int MADV_DONTFORK = 10, MADV_DOFORK = 11, MADV_WIPEONFORK = 18, MADV_KEEPONFORK = 19;

    /// <summary>
    /// madvise: the host carries it out; the advice that changes what fork copies (DONTFORK, DOFORK, WIPEONFORK,
    /// KEEPONFORK) is recorded, so that MM's copy at fork leaves out what the host leaves out, and does not charge it.
    /// Every other advice leaves the map as it is and goes no further. A hole in the range (ENOMEM) still applied the
    /// advice to the mapped part.
    /// </summary>
    private static void Madvise(SyscallCall c)
    {
        int advice = c.IntArg(2);
        if (advice is not (MADV_DONTFORK or MADV_DOFORK or MADV_WIPEONFORK or MADV_KEEPONFORK)) return;
        c.AtExit(x =>
        {
            if (x.Result != 0 && x.Result != -Errno.ENOMEM) return;
            x.Kernel.Mm.Post(nameof(IMmServer.RecordAsync), new MmEvent(x.Task.Vpid, MmOp.Madvise, x.Arg(0), x.Arg(1), 0, 0, advice, -1, 0, x.Result));
            x.Kernel.MapCheck?.Check(x.Kernel, x.Task);
        });
    }

    private const int IPC_PRIVATE = 0, IPC_CREAT = 0x200, IPC_EXCL = 0x400, IPC_RMID = 0, IPC_64 = 0x100;

    /// <summary>
    /// shmget: a new segment commits its size at creation, as Linux's newseg charges it, so a call that may make one
    /// (IPC_PRIVATE, or IPC_CREAT) is paid for at its entry; beyond the limit it fails with ENOMEM, but only where Linux
    /// would get that far: a key that exists makes no segment (the host answers, with EEXIST, EINVAL or the id) and a
    /// size outside 1..shmmax is the host's EINVAL. At the exit the host's /proc/sysvipc/shm tells whether the id is a
    /// new segment of this process; if not, the charge goes back.
    /// </summary>
    private static void Shmget(SyscallCall c)
    {
        int key = c.IntArg(0), flags = c.IntArg(2);
        ulong size = c.Arg(1);
        long charged = 0;
        if ((key == IPC_PRIVATE || (flags & IPC_CREAT) != 0) && c.Kernel.Commit.Limited
            && !TryCharge(c, new MmEvent(c.Task.Vpid, MmOp.Shmget, 0, size, 0, 0, flags, -1, 0, 0), out charged))
        {
            charged = 0;
            if ((key == IPC_PRIVATE || c.Kernel.Shm.Read().All(s => s.Key != key)) && size >= 1 && size <= ShmMax())
            {
                c.Note = "over the memory limit";
                c.Fail(Errno.ENOMEM);
                return;
            }
        }
        // IPC_PRIVATE and IPC_CREAT|IPC_EXCL make a segment whenever they succeed, of the size asked for (shm_segsz): no
        // need to read the host's whole table, which costs as much as the guest has segments (4,096 of them: 23 ms).
        bool makesOne = key == IPC_PRIVATE || (flags & (IPC_CREAT | IPC_EXCL)) == (IPC_CREAT | IPC_EXCL);
        c.AtExit(x =>
        {
            if (x.Result >= 0 && makesOne) x.Kernel.Shm.Reused(x.Kernel, x.Task.Vpid, x.Result); // a new segment: any older one with its id is gone
            var segment = x.Result < 0 || x.Kernel.Shm.Knows(x.Result) ? default
                : makesOne ? new SysvShm.Segment(key, x.Result, size, x.Task.HostTgid)
                : x.Kernel.Shm.Read().FirstOrDefault(s => s.Id == x.Result);
            if (segment.Size == 0 || segment.CreatorPid != x.Task.HostTgid)
            {
                x.Kernel.Commit.Refund(charged); // failed, or an existing segment: nothing new was committed
                return;
            }
            x.Kernel.Shm.Made(x.Result);
            x.Kernel.Mm.Post(nameof(IMmServer.RecordAsync), new MmEvent(x.Task.Vpid, MmOp.Shmget, 0, segment.Size, 0, 0, flags, -1, 0, x.Result, Charged: charged));
        });
    }

    /// <summary>The host's largest System V segment (kernel.shmmax); shmget beyond it is EINVAL.</summary>
    private static ulong ShmMax()
    {
        try
        {
            return ulong.Parse(File.ReadAllText("/proc/sys/kernel/shmmax").Trim(), System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or FormatException or OverflowException or UnauthorizedAccessException)
        {
            return ulong.MaxValue;
        }
    }

    /// <summary>shmctl(IPC_RMID): a segment with no attachment left is destroyed at once, its charge released.</summary>
    private static void Shmctl(SyscallCall c)
    {
        if ((c.IntArg(1) & ~IPC_64) != IPC_RMID) return;
        c.AtExit(x =>
        {
            if (x.Result == 0) x.Kernel.Shm.MayBeGone(x.Kernel, x.Task.Vpid);
        });
    }

    /// <summary>
    /// fork without CLONE_VM under a limit: the copy commits the parent's private writable memory again, so it is
    /// paid for at the entry, before the host copies anything, and refused with ENOMEM as Linux refuses a fork whose
    /// copy the overcommit limit cannot hold. MM tells the charge (a round trip per fork, only under --mem).
    /// </summary>
    public static bool ChargeFork(SyscallCall c)
    {
        var budget = c.Kernel.Commit;
        if (!budget.Limited) return true;
        var e = new MmEvent(c.Task.Vpid, MmOp.Fork, 0, 0, 0, 0, 0, -1, 0, Result: 0);
        long charged = c.Task.ForkCharged;
        if (charged == 0 && !TryCharge(c, e, out charged))
        {
            c.Note = "over the memory limit";
            c.Fail(Errno.ENOMEM);
            return false;
        }
        c.Task.ForkCharged = charged;
        c.AtExit(x =>
        {
            x.Task.ForkCharged = 0;
            if (x.Result < 0 && x.Result >= -4095)
                x.Kernel.Commit.Refund(charged);
            else
                x.Kernel.Mm.Post(nameof(IMmServer.RecordAsync), e with { Result = x.Result, Charged = charged });
        });
        return true;
    }

    private const int MMAP = 9, MUNMAP = 11, PROT_RW = 3, MAP_PRIVATE_ANON_NOREPLACE = 0x02 | 0x20 | 0x100000;

    /// <summary>
    /// brk, emulated: the heap is where MM put it when the space was exec'd, not where the host's execve put its own
    /// break, so the host's brk is never run (as gVisor keeps its own brk). MM plans the call as Linux's sys_brk
    /// decides it (mm/brk: refused, a shrink, or a growth into free pages); the supervisor pays for a growth from the
    /// commit budget and carries the plan out in the guest by injecting an anonymous mmap at the heap's end
    /// (MAP_FIXED_NOREPLACE: something the host mapped there meanwhile makes the growth fail, never overwritten) or a
    /// munmap of the pages given back. The host judges the mapping as it would judge its own brk's (RLIMIT_DATA,
    /// mlockall's future locking, the map count); any failure leaves the old break, which is what brk returns then.
    /// The outcome is recorded (mm/record MmOp.Brk with the break as Result); MM names the area [heap].
    /// </summary>
    private static void Brk(SyscallCall c)
    {
        int vpid = c.Task.Vpid;
        var breaks = c.Kernel.Breaks;
        if (c.Arg(0) == 0 && breaks.TryGet(vpid, out ulong now))
        {
            c.Return((long)now); // the query: below the heap's start, answered with the break
            return;
        }
        c.ServerUsed = Server.Mm;
        var plan = c.Kernel.Mm.Call(m => m.BrkAsync(new BrkRequest(vpid, c.Arg(0))));
        breaks.Set(vpid, plan.Current);
        ulong result = plan.Break;
        long charged = 0;
        if (plan.MapEnd > plan.MapStart)
        {
            var e = new MmEvent(vpid, MmOp.Brk, c.Arg(0), 0, 0, 0, 0, -1, 0, Result: 0);
            var budget = c.Kernel.Commit;
            if (budget.Limited && !TryCharge(c, e, out charged))
            {
                c.Note = "over the memory limit";
                result = plan.Current;
            }
            else
            {
                ulong length = plan.MapEnd - plan.MapStart;
                long at = Inject(c, MMAP, [plan.MapStart, length, PROT_RW, MAP_PRIVATE_ANON_NOREPLACE, ulong.MaxValue, 0]);
                if (at == (long)plan.MapStart)
                {
                    c.Kernel.Placement.Taken(vpid, plan.MapStart, length);
                }
                else
                {
                    // A kernel without MAP_FIXED_NOREPLACE would have placed it elsewhere: that is not the heap.
                    if (at > 0) Inject(c, MUNMAP, [(ulong)at, length]);
                    budget.Refund(charged);
                    charged = 0;
                    c.Note = $"the heap's growth at 0x{plan.MapStart:x} failed (errno {(at < 0 ? -at : 0)})";
                    result = plan.Current;
                }
            }
        }
        else if (plan.UnmapEnd > plan.UnmapStart)
        {
            long r = Inject(c, MUNMAP, [plan.UnmapStart, plan.UnmapEnd - plan.UnmapStart]);
            if (r == 0) c.Kernel.Placement.Released(vpid, plan.UnmapStart, plan.UnmapEnd - plan.UnmapStart);
            else result = plan.Current;
        }
        if (result != plan.Current)
        {
            breaks.Set(vpid, result);
            c.Kernel.Mm.Post(nameof(IMmServer.RecordAsync), new MmEvent(vpid, MmOp.Brk, c.Arg(0), 0, 0, 0, 0, -1, 0, (long)result, Charged: charged));
        }
        c.Return((long)result);
        if (plan.MapEnd > plan.MapStart || plan.UnmapEnd > plan.UnmapStart) c.Kernel.MapCheck?.Check(c.Kernel, c.Task);
    }

    private static long Inject(SyscallCall c, long nr, ulong[] args) =>
        (c.Injector ?? throw new InvalidOperationException("no tracer to carry out brk")).Inject(c.Task, nr, args);

    private const int SHM_RDONLY = 0x1000, SHM_EXEC = 0x8000, PROT_READ = 1, PROT_WRITE = 2, PROT_EXEC = 4;

    /// <summary>shmat: the host chose the address and knows the segment's size; the attach is recorded from its maps.</summary>
    private static void Shmat(SyscallCall c)
    {
        if (c.Result < 0 && c.Result >= -4095) return;
        var maps = HostMaps.Read(c.Task.HostTgid);
        ulong length = HostMaps.SegmentLength(maps, (ulong)c.Result);
        if (length == 0) return; // detached already by another thread: the map never held it
        int flags = c.IntArg(2);
        int prot = PROT_READ | ((flags & SHM_RDONLY) != 0 ? 0 : PROT_WRITE) | ((flags & SHM_EXEC) != 0 ? PROT_EXEC : 0);
        c.Kernel.Mm.Post(nameof(IMmServer.RecordAsync), new MmEvent(c.Task.Vpid, MmOp.Shmat, c.Arg(1), length, 0, prot, flags, -1, 0, c.Result,
            Backing: HostMaps.BackingAt(maps, (ulong)c.Result)));
        c.Kernel.Placement.Taken(c.Task.Vpid, (ulong)c.Result, length);
        c.Kernel.MapCheck?.Check(c.Kernel, c.Task);
    }

    /// <summary>shmdt: the segment's extent is read from the host's maps before the host detaches it.</summary>
    private static void Shmdt(SyscallCall c)
    {
        ulong addr = c.Arg(0);
        ulong length = HostMaps.SegmentLength(HostMaps.Read(c.Task.HostTgid), addr);
        if (length == 0) return; // nothing attached there: the host answers EINVAL and nothing changes
        c.AtExit(x =>
        {
            if (x.Result != 0) return;
            x.Kernel.Mm.Post(nameof(IMmServer.RecordAsync), new MmEvent(x.Task.Vpid, MmOp.Munmap, addr, length, 0, 0, 0, -1, 0, 0));
            x.Kernel.Placement.Released(x.Task.Vpid, addr, length);
            x.Kernel.Shm.MayBeGone(x.Kernel, x.Task.Vpid); // the last detach of a removed segment destroys it
            x.Kernel.MapCheck?.Check(x.Kernel, x.Task);
        });
    }

    private const int MAP_SHARED = 0x01, MAP_PRIVATE = 0x02, MAP_SHARED_VALIDATE = 0x03, MAP_TYPE = 0x0f, MAP_FIXED = 0x10, MAP_ANONYMOUS = 0x20,
        MAP_32BIT = 0x40, MAP_HUGETLB = 0x40000, MAP_FIXED_NOREPLACE = 0x100000, MREMAP_DONTUNMAP = 4;

    /// <summary>
    /// What a new mapping maps, for /proc/PID/maps: a file's host name, device and inode are those of the file the fd
    /// holds (read from the host's /proc/TID/fd/N, a readlink and a stat: no server round trip); a shared anonymous
    /// mapping is a shmem object whose inode only the host's maps tell (rare, so the cost of reading them is fine).
    /// Private anonymous memory has none.
    /// </summary>
    private static MmBacking? BackingOf(SyscallCall c, MmEvent e)
    {
        bool anonymous = (e.Flags & MAP_ANONYMOUS) != 0 || e.Fd < 0;
        if (anonymous)
            return (e.Flags & MAP_TYPE) is MAP_SHARED or MAP_SHARED_VALIDATE
                ? HostMaps.BackingAt(HostMaps.Read(c.Task.HostTgid), (ulong)c.Result) : null;
        string link = $"/proc/{c.Tid}/fd/{e.Fd}";
        if (SysFile.FdTarget(c.Tid, e.Fd) is not { } name || !Interop.FileIdentity(link, out int major, out int minor, out ulong inode))
            return null; // another thread closed the fd already: the name is lost, the mapping is not
        return new MmBacking(name, major, minor, inode);
    }

    private static void Enter(SyscallCall c, MmOp op, ulong addr, ulong len, ulong newLen, int prot, int flags, int fd, long offset)
    {
        var e = new MmEvent(c.Task.Vpid, op, addr, len, newLen, prot, flags, fd, offset, Result: 0);
        var budget = c.Kernel.Commit;
        if (budget.Limited)
        {
            if (TryCharge(c, e, out long charged))
            {
                e = e with { Charged = charged };
            }
            else if (op == MmOp.Brk)
            {
                c.SetArg(0, 0);
                c.Note = "over the memory limit";
            }
            else
            {
                c.Fail(Errno.ENOMEM);
                c.Note = "over the memory limit";
                return;
            }
        }
        ulong placed = op == MmOp.Mmap && addr == 0 && Placeable(flags)
            ? c.Kernel.Placement.Place(e.Vpid, c.Tid, len, anonymous: (flags & MAP_ANONYMOUS) != 0 || fd < 0) ?? 0
            : 0;
        if (placed != 0)
        {
            c.SetArg(0, placed);
            c.SetArg(3, (ulong)(uint)(flags | MAP_FIXED_NOREPLACE));
        }
        c.AtExit(x => Exit(x, e, placed));
    }

    /// <summary>
    /// mmap calls whose address the kernel chooses: no address asked for, and none of the flags that make the host's
    /// choice special (below 4 GiB, huge pages). An invalid mapping type is left to the host to refuse.
    /// </summary>
    private static bool Placeable(int flags) =>
        (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE | MAP_32BIT | MAP_HUGETLB)) == 0
        && (flags & MAP_TYPE) is MAP_SHARED or MAP_PRIVATE or MAP_SHARED_VALIDATE;

    private static void Exit(SyscallCall c, MmEvent e, ulong placed)
    {
        if (c.Result < 0 && c.Result >= -4095)
        {
            c.Kernel.Commit.Refund(e.Charged); // the host refused: nothing changed
            if (placed != 0) Reissue(c, e, placed);
            return;
        }
        if (e.Op == MmOp.Mmap) e = e with { Backing = BackingOf(c, e) };
        Follow(c.Kernel.Placement, e, c.Result, placed);
        c.Kernel.Mm.Post(nameof(IMmServer.RecordAsync), e with { Result = c.Result });
        c.Kernel.MapCheck?.Check(c.Kernel, c.Task);
    }

    /// <summary>
    /// A placed mmap failed (EEXIST: the host has something there; or the guest's arguments are bad): the task goes
    /// back over its syscall instruction with the guest's own call, as Linux restarts a call (ERESTARTNOINTR), and
    /// the host places and judges that one. The placement is given back and the window dropped.
    /// </summary>
    private static void Reissue(SyscallCall c, MmEvent e, ulong placed)
    {
        long errno = -c.Result;
        c.Kernel.Placement.Released(e.Vpid, placed, e.Length);
        c.Kernel.Placement.Refused(e.Vpid, c.Tid);
        c.Regs.Rip -= 2;
        c.Result = c.Info.Number; // rax holds the number again; the argument registers are the guest's (restored at exit)
        c.Note = $"placement at 0x{placed:x} refused (errno {errno}): re-issued as the guest asked";
    }

    /// <summary>Keeps the process's placement window in step with what a call did to the space.</summary>
    private static void Follow(Placement placement, MmEvent e, long result, ulong placed)
    {
        switch (e.Op)
        {
            case MmOp.Mmap when placed == 0:
                placement.Taken(e.Vpid, (ulong)result, e.Length);
                break;
            case MmOp.Munmap:
                placement.Released(e.Vpid, e.Addr, e.Length);
                break;
            case MmOp.Mremap:
                ulong oldLength = (e.Length + 4095) & ~4095UL, newLength = (e.NewLength + 4095) & ~4095UL;
                if ((ulong)result != e.Addr && (e.Flags & MREMAP_DONTUNMAP) == 0 && oldLength != 0)
                    placement.Released(e.Vpid, e.Addr, oldLength);
                else if ((ulong)result == e.Addr && newLength < oldLength)
                    placement.Released(e.Vpid, e.Addr + newLength, oldLength - newLength);
                placement.Taken(e.Vpid, (ulong)result, newLength);
                break;
        }
    }
}
