using UmlMicro.Contracts.Linux;
using UmlMicro.Supervisor.Guest;

namespace UmlMicro.Supervisor.Syscalls;

/// <summary>
/// Resource limits: the host keeps and enforces them (the guest's EMFILE is the host's). Under --max-files the one
/// thing the kernel adds is that the hard RLIMIT_NOFILE cannot go above the configured limit, even for a root
/// guest: that raise is EPERM, as for a process without CAP_SYS_RESOURCE. Every other check stays the host's, in
/// Linux's order, so a call that fails for another reason fails with the host's errno.
/// </summary>
internal static class SysLimits
{
    private const int RLIMIT_NOFILE = 7;

    public static void Register(Dictionary<string, EntryHandler> h)
    {
        h["setrlimit"] = c => CapFileLimit(c, c.IntArg(0), c.Arg(1));
        h["prlimit64"] = c =>
        {
            // Linux reads the new limit (EFAULT) before it looks the pid up (ESRCH).
            if (!Readable(c, c.Arg(2))) return;
            PidTranslation.TranslateArgs(c);
            CapFileLimit(c, c.IntArg(1), c.Arg(2));
        };
    }

    private static bool Readable(SyscallCall c, ulong rlimit)
    {
        if (rlimit == 0) return true;
        try
        {
            GuestMemory.Read<ulong>(c.Tid, rlimit + 8);
            GuestMemory.Read<ulong>(c.Tid, rlimit);
            return true;
        }
        catch (GuestFault)
        {
            return false; // the host answers EFAULT itself
        }
    }

    private static void CapFileLimit(SyscallCall c, int resource, ulong rlimit)
    {
        if (c.Kernel.MaxFiles == 0 || resource != RLIMIT_NOFILE || rlimit == 0 || !Readable(c, rlimit)) return;
        ulong soft = GuestMemory.Read<ulong>(c.Tid, rlimit), hard = GuestMemory.Read<ulong>(c.Tid, rlimit + 8);
        if (soft > hard) return; // the host's EINVAL
        if (hard > (ulong)c.Kernel.MaxFiles) throw new SyscallError(Errno.EPERM);
    }
}
