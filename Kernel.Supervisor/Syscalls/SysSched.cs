using UmlMicro.Contracts.Linux;
using UmlMicro.Contracts.Syscalls;
using UmlMicro.Supervisor.Guest;

namespace UmlMicro.Supervisor.Syscalls;

/// <summary>
/// Scheduling calls. The guest sees, and sets its affinity over, the virtual CPUs it was given; sched_yield
/// gives its vCPU to a waiting thread. Nice values and scheduling classes pass to the host with their pids
/// translated, so the host keeps them and answers with Linux's errnos (EACCES to lower a nice value without
/// CAP_SYS_NICE, EINVAL for a bad policy); the vCPU policy reads a thread's nice value from the host at its
/// ticks, so setpriority, nice() and sched_setattr all weigh in. The real-time classes (SCHED_FIFO, SCHED_RR,
/// SCHED_DEADLINE) are EPERM, as for a process without CAP_SYS_NICE: a guest thread that took one on the host
/// could starve the kernel's own tracer on its CPU, and the vCPUs are the guest's scheduler anyway.
/// </summary>
internal static class SysSched
{
    private const int PRIO_PROCESS = 0, PRIO_PGRP = 1, IOPRIO_WHO_PROCESS = 1, IOPRIO_WHO_PGRP = 2;

    public static void Register(Dictionary<string, EntryHandler> h)
    {
        h["sched_yield"] = Yield;
        h["sched_getaffinity"] = GetAffinity;
        h["sched_setaffinity"] = SetAffinity;
        h["getpriority"] = c => TranslateIf(c, whichArg: 0, PRIO_PROCESS, PRIO_PGRP);
        h["setpriority"] = c => TranslateIf(c, whichArg: 0, PRIO_PROCESS, PRIO_PGRP);
        h["ioprio_get"] = c => TranslateIf(c, whichArg: 0, IOPRIO_WHO_PROCESS, IOPRIO_WHO_PGRP);
        h["ioprio_set"] = c => TranslateIf(c, whichArg: 0, IOPRIO_WHO_PROCESS, IOPRIO_WHO_PGRP);
        h["sched_setscheduler"] = c => RefuseRealTime(c, c.IntArg(1));
        h["sched_setattr"] = c => RefuseRealTime(c, c.Arg(1) == 0 ? 0 : (int)GuestMemory.Read<uint>(c.Tid, c.Arg(1) + 4)); // sched_attr.sched_policy
        h["capget"] = CapHeader;
        h["capset"] = CapHeader;
    }

    private const int SCHED_FIFO = 1, SCHED_RR = 2, SCHED_DEADLINE = 6, SCHED_RESET_ON_FORK = 0x40000000;

    /// <summary>
    /// A real-time class is EPERM, in Linux's order: a missing param or negative pid EINVAL, an unreadable param
    /// EFAULT, an unknown pid ESRCH, a bad priority EINVAL, then the permission. Every other policy is the host's
    /// to check.
    /// </summary>
    private static void RefuseRealTime(SyscallCall c, int policy)
    {
        PidTranslation.TranslateArgs(c);
        policy &= ~SCHED_RESET_ON_FORK;
        if (policy is not (SCHED_FIFO or SCHED_RR or SCHED_DEADLINE)) return;
        bool setscheduler = c.Info.Name == "sched_setscheduler";
        if ((setscheduler && c.Arg(2) == 0) || c.IntArg(0) < 0) throw new SyscallError(Errno.EINVAL);
        int priority = setscheduler ? GuestMemory.Read<int>(c.Tid, c.Arg(2)) : 0;
        if (c.IntArg(0) > 0 && PidTranslation.ToHost(c, c.IntArg(0)) is null) throw new SyscallError(Errno.ESRCH);
        if (setscheduler && policy is SCHED_FIFO or SCHED_RR && priority is < 1 or > 99) throw new SyscallError(Errno.EINVAL);
        throw new SyscallError(Errno.EPERM);
    }

    /// <summary>The second argument is a pid or pgid when <paramref name="whichArg"/> says so; otherwise a uid,
    /// or nothing at all when "which" is invalid (the host says EINVAL).</summary>
    private static void TranslateIf(SyscallCall c, int whichArg, int process, int group)
    {
        if (c.IntArg(whichArg) == process || c.IntArg(whichArg) == group) PidTranslation.TranslateArg(c, 1);
    }

    /// <summary>Always 0, as on Linux; when threads wait for a vCPU, the caller goes behind them.</summary>
    private static void Yield(SyscallCall c)
    {
        c.Kernel.Vcpus.Yield(c.Task.Vcpu);
        c.Return(0);
    }

    /// <summary>The mask of the guest's virtual CPUs, as Linux answers: EINVAL when the buffer is too small.</summary>
    private static void GetAffinity(SyscallCall c)
    {
        // The length is an unsigned int, checked before the pid (sched_getaffinity in kernel/sched/syscalls.c).
        ulong len = (uint)c.Arg(1);
        int cpus = c.Kernel.Cpus;
        int maskBytes = (cpus + 63) / 64 * 8;
        if (len * 8 < (ulong)cpus || (len & 7) != 0) throw new SyscallError(Errno.EINVAL);
        RequireSelfOrGuest(c, c.IntArg(0));
        var mask = new byte[maskBytes];
        for (int i = 0; i < cpus; i++) mask[i / 8] |= (byte)(1 << (i % 8));
        GuestMemory.Write(c.Tid, c.Arg(2), mask);
        c.ServerUsed = Server.Sched;
        c.Return(maskBytes);
    }

    /// <summary>
    /// A mask over the guest's virtual CPUs, not the host's: it must name at least one of them (else EINVAL, as
    /// Linux says for a mask with no online CPU); where the host runs the thread stays the kernel's choice, so
    /// a guest can never move itself off the CPUs it was given.
    /// </summary>
    private static void SetAffinity(SyscallCall c)
    {
        // Linux copies the mask in (EFAULT) before it looks the pid up (ESRCH); the length is an unsigned int.
        int cpus = c.Kernel.Cpus;
        var mask = new byte[(int)Math.Min((uint)c.Arg(1), 128u)];
        GuestMemory.Read(c.Tid, c.Arg(2), mask);
        RequireSelfOrGuest(c, c.IntArg(0));
        bool any = false;
        for (int i = 0; i < cpus && i / 8 < mask.Length; i++) any |= (mask[i / 8] & (1 << (i % 8))) != 0;
        if (!any) throw new SyscallError(Errno.EINVAL);
        c.ServerUsed = Server.Sched;
        c.Return(0);
    }

    /// <summary>0 (the caller) or a pid the guest was granted; anything else does not exist for it.</summary>
    private static void RequireSelfOrGuest(SyscallCall c, int pid)
    {
        if (pid < 0 || (pid > 0 && PidTranslation.ToHost(c, pid) is null)) throw new SyscallError(Errno.ESRCH);
    }

    /// <summary>
    /// capget/capset carry a pid inside their header struct { u32 version; int pid; }. Linux checks the version
    /// first (and writes the one it prefers back), refuses a negative pid, and capset refuses any pid but the
    /// caller's (EPERM): those the host decides on the header as the guest wrote it, where no pid is looked up.
    /// </summary>
    private static void CapHeader(SyscallCall c)
    {
        const uint V1 = 0x19980330, V2 = 0x20071026, V3 = 0x20080522;
        ulong header = c.Arg(0);
        if (header == 0 || GuestMemory.Read<uint>(c.Tid, header) is not (V1 or V2 or V3)) return;
        int vpid = GuestMemory.Read<int>(c.Tid, header + 4);
        if (vpid <= 0) return;
        int host = PidTranslation.ToHost(c, vpid) ?? PidTranslation.NoSuchPid;
        GuestMemory.Write(c.Tid, header + 4, host);
        c.AtExit(x => GuestMemory.Write(x.Tid, header + 4, vpid));
    }
}
