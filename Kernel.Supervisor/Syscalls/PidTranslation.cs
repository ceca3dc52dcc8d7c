using UmlMicro.Contracts.Linux;
using UmlMicro.Contracts.Syscalls;

namespace UmlMicro.Supervisor.Syscalls;

/// <summary>
/// Virtual ⇄ host pid translation for syscall arguments and results, derived from the table's
/// <see cref="ArgKind.Pid"/> and <see cref="RetKind.Pid"/>. A guest pid with no grant behind it is ESRCH:
/// it must never reach the host, where it would name some unrelated process.
/// </summary>
internal static class PidTranslation
{
    /// <summary>Translates every Pid argument: 0 (self) stays, n names a process, -n a process group.</summary>
    public static void TranslateArgs(SyscallCall call)
    {
        var kinds = call.Info.Args;
        for (int i = 0; i < kinds.Length; i++)
            if (kinds[i] == ArgKind.Pid) TranslateArg(call, i, Errno.ESRCH);
    }

    /// <summary>Translates argument <paramref name="i"/>; an unknown pid fails the call with <paramref name="unknownErrno"/>.</summary>
    public static void TranslateArg(SyscallCall call, int i, int unknownErrno)
    {
        int v = call.IntArg(i);
        if (v == 0) return;
        if (v == -1) throw new SyscallError(Errno.ESRCH); // "every process" is never handed to the host
        // -INT_MIN does not exist: Linux's kill and wait4 answer it ESRCH before looking anything up.
        if (v == int.MinValue) throw new SyscallError(Errno.ESRCH);
        int host = ToHost(call, Math.Abs(v)) ?? throw new SyscallError(unknownErrno);
        call.SetArg(i, (ulong)(long)(v < 0 ? -host : host));
    }

    public static int? ToHost(SyscallCall call, int vpid) =>
        vpid > 0 && call.Kernel.Pids.TryHost(vpid, out var h) ? h : null;

    /// <summary>The guest's view of a host pid; 0 for one outside the guest (as a pid namespace shows it).</summary>
    public static int ToVirtual(SyscallCall call, int hostPid) =>
        hostPid > 0 && call.Kernel.Pids.TryVirtual(hostPid, out var v) ? v : 0;
}
