using UmlMicro.Contracts.Linux;
using UmlMicro.Supervisor.Native;

namespace UmlMicro.Supervisor.Syscalls;

/// <summary>
/// Sending signals. A guest can only reach guest processes: targets are translated through the pid
/// grants, and "every process" (kill -1) is expanded here over the guest's own processes.
/// </summary>
internal static class SysSignal
{
    public static void Register(Dictionary<string, EntryHandler> h)
    {
        h["kill"] = Kill;
        h["tkill"] = PidTranslation.TranslateArgs;
        h["tgkill"] = PidTranslation.TranslateArgs;
        h["rt_sigqueueinfo"] = PidTranslation.TranslateArgs;
        h["rt_tgsigqueueinfo"] = PidTranslation.TranslateArgs;
    }

    private static void Kill(SyscallCall c)
    {
        if (c.IntArg(0) == -1) KillAll(c);
        else PidTranslation.TranslateArgs(c);
    }

    /// <summary>kill(-1, sig) inside a pid namespace: every guest process but pid 1 and the caller's own.</summary>
    private static void KillAll(SyscallCall c)
    {
        int sig = c.IntArg(1);
        if (sig is < 0 or > 64) throw new SyscallError(Errno.EINVAL);
        bool any = false;
        foreach (var p in c.Kernel.Tasks.Processes())
        {
            if (p.Vpid == 1 || p.HostTgid == c.Task.HostTgid) continue;
            any |= Interop.kill(p.HostTgid, sig) == 0;
        }
        if (any) c.Return(0);
        else c.Fail(Errno.ESRCH);
    }
}
