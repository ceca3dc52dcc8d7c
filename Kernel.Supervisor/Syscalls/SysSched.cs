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
    private const int PRIO_PROCESS = 0, PRIO_PGRP = 1, PRIO_USER = 2, IOPRIO_WHO_PROCESS = 1, IOPRIO_WHO_PGRP = 2, IOPRIO_WHO_USER = 3;
    private const long SETPRIORITY = 141, IOPRIO_SET = 251, IOPRIO_GET = 252;

    public static void Register(Dictionary<string, EntryHandler> h)
    {
        h["sched_yield"] = Yield;
        h["sched_getaffinity"] = GetAffinity;
        h["sched_setaffinity"] = SetAffinity;
        h["getpriority"] = c =>
        {
            if (c.IntArg(0) == PRIO_USER) GetPriorityOfUser(c);
            else TranslateIf(c, whichArg: 0, PRIO_PROCESS, PRIO_PGRP);
        };
        h["setpriority"] = c =>
        {
            if (c.IntArg(0) == PRIO_USER) SetPriorityOfUser(c);
            else TranslateIf(c, whichArg: 0, PRIO_PROCESS, PRIO_PGRP);
        };
        h["ioprio_get"] = c =>
        {
            if (c.IntArg(0) == IOPRIO_WHO_USER) IoprioOfUser(c, set: false);
            else TranslateIf(c, whichArg: 0, IOPRIO_WHO_PROCESS, IOPRIO_WHO_PGRP);
        };
        h["ioprio_set"] = c =>
        {
            if (c.IntArg(0) == IOPRIO_WHO_USER) IoprioOfUser(c, set: true);
            else TranslateIf(c, whichArg: 0, IOPRIO_WHO_PROCESS, IOPRIO_WHO_PGRP);
        };
        h["sched_setscheduler"] = c => RefuseRealTime(c, c.IntArg(1));
        h["sched_setattr"] = c => RefuseRealTime(c, c.Arg(1) == 0 ? 0 : (int)GuestMemory.Read<uint>(c.Tid, c.Arg(1) + 4)); // sched_attr.sched_policy
        h["capget"] = CapHeader;
        h["capset"] = c =>
        {
            SysCreds.Forget(c);
            CapHeader(c);
        };
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

    /// <summary>
    /// The guest's threads whose real uid is <paramref name="uid"/> (the caller's for 0): PRIO_USER and IOPRIO_WHO_USER
    /// name every process of a user, and on the host that would reach the host's own processes of that user too.
    /// So they are emulated over the guest's threads alone, each through its host tid, in the host's order.
    /// </summary>
    private static IEnumerable<GuestTask> ThreadsOfUser(SyscallCall c, uint uid)
    {
        foreach (var t in c.Kernel.Tasks.Snapshot())
            if (t.Vtid != 0 && HostStatus.RealUid(t.HostTid) == uid) yield return t;
    }

    private static uint CallerUid(SyscallCall c) => HostStatus.RealUid(c.Tid) ?? throw new GuestFault(0);

    /// <summary>getpriority(PRIO_USER): the highest priority (20 - nice) among the user's guest threads, ESRCH for none.</summary>
    private static void GetPriorityOfUser(SyscallCall c)
    {
        uint uid = c.IntArg(1) == 0 ? CallerUid(c) : (uint)c.IntArg(1);
        long best = -Errno.ESRCH;
        foreach (var t in ThreadsOfUser(c, uid))
            if (Nice(t.HostTid) is { } nice) best = Math.Max(best, 20 - nice);
        c.Return(best);
    }

    /// <summary>
    /// setpriority(PRIO_USER) as Linux's loop does it: each of the user's guest threads is set by the host
    /// (setpriority(PRIO_PROCESS, its tid), injected, so the host checks the caller's rights on each); the result is
    /// ESRCH when none matched, the last EPERM/EACCES when one was refused, else 0.
    /// </summary>
    private static void SetPriorityOfUser(SyscallCall c)
    {
        uint uid = c.IntArg(1) == 0 ? CallerUid(c) : (uint)c.IntArg(1);
        var injector = c.Injector ?? throw new InvalidOperationException("no tracer to inject setpriority");
        long error = -Errno.ESRCH;
        foreach (var t in ThreadsOfUser(c, uid).ToArray())
        {
            long r = injector.Inject(c.Task, SETPRIORITY, [PRIO_PROCESS, (ulong)t.NsTid, c.Arg(2)]);
            if (r == 0 && error == -Errno.ESRCH) error = 0;
            else if (r is -Errno.EPERM or -Errno.EACCES) error = r;
        }
        c.Return(error);
    }

    /// <summary>
    /// ioprio_set/ioprio_get(IOPRIO_WHO_USER) over the user's guest threads, as Linux's loops: set stops at the first
    /// error (each thread set by the host, injected); get answers the best (lowest) priority. Linux matches uid 0 when
    /// set is given 0, and the caller's uid when get is.
    /// </summary>
    private static void IoprioOfUser(SyscallCall c, bool set)
    {
        uint uid = c.IntArg(1) == 0 && !set ? CallerUid(c) : (uint)c.IntArg(1);
        var injector = c.Injector ?? throw new InvalidOperationException("no tracer to inject ioprio calls");
        long result = -Errno.ESRCH;
        foreach (var t in ThreadsOfUser(c, uid).ToArray())
        {
            long r = injector.Inject(c.Task, set ? IOPRIO_SET : IOPRIO_GET, set ? [IOPRIO_WHO_PROCESS, (ulong)t.NsTid, c.Arg(2)] : [IOPRIO_WHO_PROCESS, (ulong)t.NsTid]);
            if (set)
            {
                result = r;
                if (r != 0) break;
            }
            else if (r >= 0)
            {
                result = result == -Errno.ESRCH ? r : Math.Min(result, r);
            }
        }
        c.Return(result);
    }

    /// <summary>A thread's nice value, field 19 of the host's /proc/TID/stat; null when it is gone.</summary>
    private static int? Nice(int tid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{tid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return int.Parse(fields[19 - 3]);
        }
        catch (IOException)
        {
            return null;
        }
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
