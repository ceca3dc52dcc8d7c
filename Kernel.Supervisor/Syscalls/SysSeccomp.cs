using UmlMicro.Contracts.Linux;
using UmlMicro.Supervisor.Guest;
using static UmlMicro.Contracts.Linux.LinuxFlags;

namespace UmlMicro.Supervisor.Syscalls;

/// <summary>
/// A guest's own seccomp filters. They stack on the kernel's and may only narrow what a guest does, with one
/// exception: a filter that returns SECCOMP_RET_USER_NOTIF outranks the kernel's RET_TRACE, and a listener that
/// answers SECCOMP_USER_NOTIF_FLAG_CONTINUE lets the call run on the host without the kernel ever seeing it. So a
/// filter with a listener is refused with EBUSY, which is what Linux answers when a filter above already has one
/// (the kernel's place in the guest's filter stack); every other filter is the host's to install.
/// </summary>
internal static class SysSeccomp
{
    private const uint KnownFlags = SECCOMP_FILTER_FLAG_TSYNC | SECCOMP_FILTER_FLAG_LOG | SECCOMP_FILTER_FLAG_SPEC_ALLOW |
        SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_TSYNC_ESRCH | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
    private const int CAP_SYS_ADMIN = 21;

    public static void Register(Dictionary<string, EntryHandler> h)
    {
        h["seccomp"] = Seccomp;
    }

    /// <summary>
    /// EBUSY in Linux's order (seccomp_set_mode_filter): unknown flags and TSYNC with NEW_LISTENER but without
    /// TSYNC_ESRCH are EINVAL; the program is then copied in (EFAULT) and checked (EINVAL when empty or too long,
    /// EACCES without no_new_privs or CAP_SYS_ADMIN); only then is an ancestor's listener found.
    /// </summary>
    private static void Seccomp(SyscallCall c)
    {
        uint flags = (uint)c.Arg(1);
        if (c.IntArg(0) != SECCOMP_SET_MODE_FILTER || (flags & SECCOMP_FILTER_FLAG_NEW_LISTENER) == 0) return;
        if ((flags & ~KnownFlags) != 0) throw new SyscallError(Errno.EINVAL);
        if ((flags & SECCOMP_FILTER_FLAG_TSYNC) != 0 && (flags & SECCOMP_FILTER_FLAG_TSYNC_ESRCH) == 0) throw new SyscallError(Errno.EINVAL);
        // struct sock_fprog { unsigned short len; struct sock_filter *filter; }
        ulong fprog = c.Arg(2);
        ushort length = GuestMemory.Read<ushort>(c.Tid, fprog);
        ulong program = GuestMemory.Read<ulong>(c.Tid, fprog + 8);
        if (length == 0 || length > BPF_MAXINSNS) throw new SyscallError(Errno.EINVAL);
        if (!HostStatus.NoNewPrivs(c.Tid) && !HostStatus.HasCapability(c.Tid, CAP_SYS_ADMIN)) throw new SyscallError(Errno.EACCES);
        GuestMemory.Read(c.Tid, program, new byte[length * 8]);
        throw new SyscallError(Errno.EBUSY);
    }
}
