using UmlMicro.Contracts.Linux;
using UmlMicro.Contracts.Syscalls;

namespace UmlMicro.Supervisor.Syscalls;

/// <summary>
/// Virtual ⇄ host pid translation for syscall arguments and results, derived from the table's
/// <see cref="ArgKind.Pid"/> and <see cref="RetKind.Pid"/>. A guest pid with no grant behind it is ESRCH:
/// it must never reach the host, where it would name some unrelated process. "Host" pids here are the ones the host
/// kernel reads and writes in the guest's own calls: pids of the guest's pid namespace, which equal the guest pids
/// wherever Sched could grant the number the namespace gave (all but guest pid 1 as a rule), so translating is
/// mostly the identity, kept for the rest.
/// </summary>
internal static class PidTranslation
{
    /// <summary>
    /// A pid no host process can have (Linux's PID_MAX_LIMIT is 4194304): what a guest pid without a grant becomes
    /// on its way to the host. The host then checks the call's other arguments first and answers an unknown pid
    /// where Linux would (ESRCH, ECHILD, EPERM for capset), so the errno is Linux's in every case, not only when
    /// the pid is the one thing wrong.
    /// </summary>
    public const int NoSuchPid = int.MaxValue;

    /// <summary>Translates every Pid argument: 0 (self) stays, n names a process, -n a process group.</summary>
    public static void TranslateArgs(SyscallCall call)
    {
        var kinds = call.Info.Args;
        for (int i = 0; i < kinds.Length; i++)
            if (kinds[i] == ArgKind.Pid) TranslateArg(call, i);
    }

    /// <summary>Translates argument <paramref name="i"/>; a pid without a grant becomes <see cref="NoSuchPid"/>.</summary>
    public static void TranslateArg(SyscallCall call, int i)
    {
        int v = call.IntArg(i);
        if (v == 0) return;
        // Only kill and wait4 read -n as process group n; elsewhere a negative pid names nothing, on the host too,
        // and the host refuses it as Linux does (EINVAL from tkill, sched_getparam..., ESRCH from others).
        bool groups = call.Info.Name is "kill" or "wait4";
        if (v < 0 && !groups) return;
        if (v == -1) throw new SyscallError(Errno.ESRCH); // "every process" is never handed to the host
        // -INT_MIN does not exist: Linux's kill and wait4 answer it ESRCH before looking anything up.
        if (v == int.MinValue) throw new SyscallError(Errno.ESRCH);
        int host = ToHost(call, Math.Abs(v)) ?? NoSuchPid;
        call.SetArg(i, (ulong)(long)(v < 0 ? -host : host));
    }

    /// <summary>
    /// An owner as F_SETOWN, FIOSETOWN and SIOCSPGRP take it: n a process (or thread), -n process group n, 0 nobody.
    /// A guest pid without a grant becomes <see cref="NoSuchPid"/>, which the host answers ESRCH after its own checks;
    /// INT_MIN stays, for the host's EINVAL.
    /// </summary>
    public static int OwnerToHost(SyscallCall call, int owner)
    {
        if (owner == 0 || owner == int.MinValue) return owner;
        int host = ToHost(call, Math.Abs(owner)) ?? NoSuchPid;
        return owner < 0 ? -host : host;
    }

    /// <summary>The guest's view of an owner the host reports (F_GETOWN, FIOGETOWN, SIOCGPGRP): -n is a process group.</summary>
    public static int OwnerToVirtual(SyscallCall call, int owner) =>
        owner < 0 && owner != int.MinValue ? -ToVirtual(call, -owner) : ToVirtual(call, owner);

    public static int? ToHost(SyscallCall call, int vpid) =>
        vpid > 0 && call.Kernel.Pids.TryNs(vpid, out var h) ? h : null;

    /// <summary>The guest's view of a pid the host handed it; 0 for one outside the guest (as a pid namespace shows it).</summary>
    public static int ToVirtual(SyscallCall call, int hostPid) =>
        hostPid > 0 && call.Kernel.Pids.TryVirtualOfNs(hostPid, out var v) ? v : 0;
}
