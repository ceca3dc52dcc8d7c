using UmlMicro.Contracts.Linux;
using UmlMicro.Supervisor.Guest;

namespace UmlMicro.Supervisor.Syscalls;

/// <summary>
/// fcntl and ioctl: the data-plane calls on an fd, which the host serves, except where they carry a pid or change an
/// inode. Pids: the owner that receives SIGIO/SIGURG (F_SETOWN, F_SETOWN_EX, FIOSETOWN, SIOCSPGRP), a terminal's
/// foreground group (TIOCSPGRP), and what the host reports back (F_GETOWN, F_GETOWN_EX, FIOGETOWN, SIOCGPGRP,
/// TIOCGPGRP, TIOCGSID, a lock holder's l_pid from F_GETLK) cross the guest boundary through
/// <see cref="PidTranslation"/>, both ways. Inodes: an attribute ioctl on a file of the read-only layer (an fd opened
/// read-only reaches the host's file) changes the guest's copy, as overlayfs copies up; the filesystem-wide ones
/// answer what they answer on an overlay.
/// </summary>
internal static class SysFdControl
{
    private const int F_GETLK = 5, F_SETOWN = 8, F_GETOWN = 9, F_SETOWN_EX = 15, F_GETOWN_EX = 16, F_OFD_GETLK = 36;
    private const int F_OWNER_TID = 0, F_OWNER_PGRP = 2, F_UNLCK = 2;
    private const uint FIOSETOWN = 0x8901, SIOCSPGRP = 0x8902, FIOGETOWN = 0x8903, SIOCGPGRP = 0x8904,
        TIOCGPGRP = 0x540F, TIOCSPGRP = 0x5410, TIOCGSID = 0x5429;
    private const uint FS_IOC_SETFLAGS = 0x40086602, FS_IOC32_SETFLAGS = 0x40046602, FS_IOC_FSSETXATTR = 0x401c5820,
        FS_IOC_SETVERSION = 0x40087602, FS_IOC32_SETVERSION = 0x40047602, FS_IOC_ENABLE_VERITY = 0x40806685,
        FS_IOC_SET_ENCRYPTION_POLICY = 0x800c6613, FS_IOC_SETFSLABEL = 0x41009432, FIFREEZE = 0xc0045877, FITHAW = 0xc0045878;
    private const long OPENAT = 257, IOCTL = 16, CLOSE = 3;
    private const int CAP_SYS_ADMIN = 21;

    /// <summary>Where a rewritten in-argument goes in the scratch area (slot 3 holds a copy-up path).</summary>
    private const int ArgSlot = 2;

    public static void Register(Dictionary<string, EntryHandler> h)
    {
        h["fcntl"] = Fcntl;
        h["ioctl"] = Ioctl;
    }

    private static void Fcntl(SyscallCall c)
    {
        switch (c.IntArg(1))
        {
            case F_SETOWN:
                c.SetArg(2, (ulong)(long)PidTranslation.OwnerToHost(c, c.IntArg(2)));
                break;
            case F_GETOWN:
                // The result is the owner; -n is a group. The only error (EBADF) comes before the owner is read.
                c.AtExit(x =>
                {
                    if (x.Result != -Errno.EBADF || SysFile.FdTarget(x.Tid, x.IntArg(0)) is not null)
                        x.Result = PidTranslation.OwnerToVirtual(x, (int)x.Result);
                });
                break;
            case F_SETOWN_EX:
                SetOwnerEx(c);
                break;
            case F_GETOWN_EX:
                c.AtExit(x =>
                {
                    if (x.Result != 0) return;
                    int pid = GuestMemory.Read<int>(x.Tid, x.Arg(2) + 4);
                    GuestMemory.Write(x.Tid, x.Arg(2) + 4, PidTranslation.ToVirtual(x, pid));
                });
                break;
            case F_GETLK or F_OFD_GETLK:
                // struct flock: l_type @0 (short), l_pid @24; a holder outside the guest reads as 0, as in a pid namespace.
                c.AtExit(x =>
                {
                    if (x.Result != 0 || GuestMemory.Read<short>(x.Tid, x.Arg(2)) == F_UNLCK) return;
                    int pid = GuestMemory.Read<int>(x.Tid, x.Arg(2) + 24);
                    if (pid > 0) GuestMemory.Write(x.Tid, x.Arg(2) + 24, PidTranslation.ToVirtual(x, pid));
                });
                break;
        }
    }

    /// <summary>
    /// struct f_owner_ex { int type; pid_t pid; }: the host is given a copy with the host pid. An unreadable struct or
    /// an unknown type is the host's EFAULT or EINVAL, so it gets the guest's own.
    /// </summary>
    private static void SetOwnerEx(SyscallCall c)
    {
        int type, pid;
        try
        {
            type = GuestMemory.Read<int>(c.Tid, c.Arg(2));
            pid = GuestMemory.Read<int>(c.Tid, c.Arg(2) + 4);
        }
        catch (GuestFault)
        {
            return;
        }
        if (type is < F_OWNER_TID or > F_OWNER_PGRP || pid == 0) return;
        int host = pid > 0 ? PidTranslation.ToHost(c, pid) ?? PidTranslation.NoSuchPid : PidTranslation.NoSuchPid;
        WriteArg(c, [type, host]);
    }

    /// <summary>Hands the host <paramref name="values"/> in the scratch area instead of what argument 2 points to.</summary>
    private static void WriteArg(SyscallCall c, int[] values)
    {
        ulong slot = c.ScratchSlotAddress(ArgSlot);
        GuestMemory.Write(c.Tid, slot, System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
        c.SetArg(2, slot);
    }

    private static void Ioctl(SyscallCall c)
    {
        switch ((uint)c.Arg(1))
        {
            case FIOSETOWN or SIOCSPGRP:
                if (ReadInt(c) is { } owner) WriteArg(c, [PidTranslation.OwnerToHost(c, owner)]);
                break;
            case TIOCSPGRP:
                // A negative group is the host's EINVAL; 0 names nothing there either (ESRCH).
                if (ReadInt(c) is int pgrp && pgrp > 0) WriteArg(c, [PidTranslation.ToHost(c, pgrp) ?? PidTranslation.NoSuchPid]);
                break;
            case FIOGETOWN or SIOCGPGRP or TIOCGPGRP or TIOCGSID:
                c.AtExit(x =>
                {
                    if (x.Result != 0) return;
                    int v = GuestMemory.Read<int>(x.Tid, x.Arg(2));
                    GuestMemory.Write(x.Tid, x.Arg(2), PidTranslation.OwnerToVirtual(x, v));
                });
                break;
            case FS_IOC_SETFLAGS or FS_IOC32_SETFLAGS or FS_IOC_FSSETXATTR:
                OnCopy(c);
                break;
            case FS_IOC_SETVERSION or FS_IOC32_SETVERSION or FS_IOC_ENABLE_VERITY or FS_IOC_SET_ENCRYPTION_POLICY or FS_IOC_SETFSLABEL:
                // Filesystem-specific: an overlay file has no such ioctl (ENOTTY). The copy stands, as after any copy-up.
                if (SysFile.FdCopy(c, c.IntArg(0)) is not null) throw new SyscallError(Errno.ENOTTY);
                break;
            case FIFREEZE or FITHAW:
                // They freeze the whole host filesystem the fd lies on. Without CAP_SYS_ADMIN the host says EPERM itself;
                // with it, the guest gets what an overlay (no freeze_fs) answers, and a thaw finds nothing frozen.
                if (HostStatus.HasCapability(c.Tid, CAP_SYS_ADMIN) && SysFile.FdTarget(c.Tid, c.IntArg(0)) is not null)
                    throw new SyscallError((uint)c.Arg(1) == FIFREEZE ? Errno.EOPNOTSUPP : Errno.EINVAL);
                break;
        }
    }

    /// <summary>The int argument 2 points to, or null when it is unreadable (the host's EFAULT).</summary>
    private static int? ReadInt(SyscallCall c)
    {
        try
        {
            return GuestMemory.Read<int>(c.Tid, c.Arg(2));
        }
        catch (GuestFault)
        {
            return null;
        }
    }

    /// <summary>
    /// An inode attribute ioctl (FS_IOC_SETFLAGS, FS_IOC_FSSETXATTR) on a file of the read-only layer: overlayfs copies
    /// the file up and changes the copy (ovl_fileattr_set). So does the kernel: the copy is opened in the guest, the
    /// ioctl made on it, with the guest's rights and argument, and closed, all by injection.
    /// </summary>
    private static void OnCopy(SyscallCall c)
    {
        if (SysFile.FdCopy(c, c.IntArg(0)) is not { } path) return;
        var injector = c.Injector ?? throw new InvalidOperationException("no tracer to inject the ioctl on the copy");
        const int flags = LinuxFlags.O_CLOEXEC | 0x800 /* O_NONBLOCK */ | 0x100 /* O_NOCTTY */ | LinuxFlags.O_NOFOLLOW;
        long fd = injector.Inject(c.Task, OPENAT, [unchecked((ulong)LinuxFlags.AT_FDCWD), path, flags, 0]);
        if (fd < 0)
        {
            c.Return(fd);
            return;
        }
        long r = injector.Inject(c.Task, IOCTL, [(ulong)fd, c.Arg(1), c.Arg(2)]);
        injector.Inject(c.Task, CLOSE, [(ulong)fd]);
        c.Return(r);
    }
}
