using UmlMicro.Contracts.Linux;
using UmlMicro.Contracts.Servers;
using static UmlMicro.Contracts.Linux.SchedAbi;
using UmlMicro.Contracts.Syscalls;
using UmlMicro.Supervisor.Guest;

namespace UmlMicro.Supervisor.Syscalls;

/// <summary>
/// Scheduling calls. The guest sees, and sets its affinity over, the virtual CPUs it was given; sched_yield
/// gives its vCPU to a waiting thread. Each thread's scheduling attributes (nice, policy, real-time priority, DEADLINE
/// parameters, reset-on-fork) are Sched's: getpriority, setpriority, sched_{get,set}{param,scheduler,attr} and
/// sched_rr_get_interval are answered from its record, and Sched decides every permission with Linux's rules, from the
/// credentials the supervisor reads from the host (<see cref="HostStatus.SchedCreds"/>). The supervisor copies the
/// structs in and out of the guest and checks what Linux checks before it looks a pid up.
/// <para>
/// The host gets what it can take without privilege: a nice value above 0 is also set on the host thread (it only
/// yields the host's CPU to others), and 0 again when the guest lowers it to 0 or below, when the host lets umlmicro
/// (else the host thread keeps the higher value, which harms nobody). A lower nice or a real-time class never reaches
/// the host: a guest thread must not outrank the kernel's own tracer on its CPU, and the vCPUs' run policy in Sched
/// ranks the guest's threads by what Sched keeps.
/// </para>
/// </summary>
internal static class SysSched
{
    private const int IOPRIO_WHO_PROCESS = 1, IOPRIO_WHO_PGRP = 2, IOPRIO_WHO_USER = 3;
    private const long IOPRIO_SET = 251, IOPRIO_GET = 252;

    public static void Register(Dictionary<string, EntryHandler> h)
    {
        h["sched_yield"] = Yield;
        h["sched_getaffinity"] = GetAffinity;
        h["sched_setaffinity"] = SetAffinity;
        h["getpriority"] = GetPriority;
        h["setpriority"] = SetPriority;
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
        h["sched_setscheduler"] = c =>
        {
            if (c.IntArg(1) < 0) throw new SyscallError(Errno.EINVAL);
            SetParam(c, c.IntArg(1), c.Arg(2));
        };
        h["sched_setparam"] = c => SetParam(c, SETPARAM_POLICY, c.Arg(1));
        h["sched_setattr"] = SetAttr;
        h["sched_getscheduler"] = c =>
        {
            var attr = AttrOf(c, c.IntArg(0));
            c.Return(attr.Policy | ((attr.Flags & SCHED_FLAG_RESET_ON_FORK) != 0 ? SCHED_RESET_ON_FORK : 0));
        };
        h["sched_getparam"] = c =>
        {
            if (c.Arg(1) == 0 || c.IntArg(0) < 0) throw new SyscallError(Errno.EINVAL);
            var attr = AttrOf(c, c.IntArg(0));
            GuestMemory.Write(c.Tid, c.Arg(1), RealTime(attr.Policy) ? attr.Priority : 0);
            c.Return(0);
        };
        h["sched_getattr"] = GetAttr;
        h["sched_rr_get_interval"] = RrInterval;
        h["capget"] = CapHeader;
        h["capset"] = c =>
        {
            SysCreds.Forget(c);
            CapHeader(c);
        };
    }

    /// <summary>getpriority: 20 - nice, the highest among the threads named (Sched's answer, errors included).</summary>
    private static void GetPriority(SyscallCall c)
    {
        int which = c.IntArg(0);
        c.ServerUsed = Server.Sched;
        // Only PRIO_USER matches threads by their owners; the others Sched finds in its own tree.
        var request = new PriorityRequest(Creds(c, c.Task), which, c.IntArg(1), 0, which == PRIO_USER ? AllCreds(c) : []);
        c.Return(c.Kernel.Sched.Call(s => s.GetPriorityAsync(request)));
    }

    /// <summary>setpriority: Sched sets and answers; each thread it changed gets its nice value on the host as far as the
    /// host takes it (see the class comment).</summary>
    private static void SetPriority(SyscallCall c)
    {
        int which = c.IntArg(0), who = c.IntArg(1);
        IReadOnlyList<TaskCreds> owners = which switch
        {
            PRIO_PROCESS => TaskOf(c, who) is { } t ? [Creds(c, t)] : [],
            PRIO_PGRP or PRIO_USER => AllCreds(c),
            _ => [],
        };
        c.ServerUsed = Server.Sched;
        var request = new PriorityRequest(Creds(c, c.Task), which, who, c.IntArg(2), owners);
        var answer = c.Kernel.Sched.Call(s => s.SetPriorityAsync(request));
        if (answer.Changed.Count > 0)
        {
            int nice = Math.Clamp(c.IntArg(2), MIN_NICE, MAX_NICE);
            var changed = answer.Changed.ToHashSet();
            foreach (var t in c.Kernel.Tasks.Snapshot())
                if (t.Vtid != 0 && changed.Contains(t.Vtid)) Native.Interop.SetHostNice(t.HostTid, Math.Max(nice, 0));
        }
        c.Return(answer.Result);
    }

    /// <summary>sched_setscheduler and sched_setparam (policy -1): Linux checks the param pointer and the pid's sign, then
    /// copies the param (EFAULT); the pid, the policy and the permission are Sched's.</summary>
    private static void SetParam(SyscallCall c, int policy, ulong param)
    {
        if (param == 0 || c.IntArg(0) < 0) throw new SyscallError(Errno.EINVAL);
        int priority = GuestMemory.Read<int>(c.Tid, param);
        long flags = 0;
        // The legacy reset-on-fork bit in the policy (_sched_setscheduler's fixup).
        if (policy != SETPARAM_POLICY && (policy & SCHED_RESET_ON_FORK) != 0)
        {
            flags = SCHED_FLAG_RESET_ON_FORK;
            policy &= ~SCHED_RESET_ON_FORK;
        }
        AskSet(c, c.IntArg(0), new SchedAttr(policy, flags, 0, priority), legacy: true);
    }

    /// <summary>
    /// sched_setattr: EINVAL for no struct, a negative pid or any flags; then the struct is copied in as
    /// sched_copy_attr does it: a size of 0 means the first version's 48 bytes, one below that or above a page is
    /// E2BIG (the size Linux knows is written back), as are nonzero bytes beyond the 56 it knows; utilisation clamps
    /// need the second version (EINVAL). A negative policy is EINVAL; the rest is Sched's.
    /// </summary>
    private static void SetAttr(SyscallCall c)
    {
        ulong uattr = c.Arg(1);
        if (uattr == 0 || c.IntArg(0) < 0 || c.IntArg(2) != 0) throw new SyscallError(Errno.EINVAL);
        uint size = GuestMemory.Read<uint>(c.Tid, uattr + AttrSize);
        if (size == 0) size = SCHED_ATTR_SIZE_VER0;
        if (size < SCHED_ATTR_SIZE_VER0 || size > PageSize) TooBig(c, uattr);
        var bytes = new byte[size];
        GuestMemory.Read(c.Tid, uattr, bytes);
        if (bytes.AsSpan(Math.Min((int)size, SCHED_ATTR_SIZE_VER1)).ContainsAnyExcept((byte)0)) TooBig(c, uattr);
        var known = new byte[SCHED_ATTR_SIZE_VER1];
        bytes.AsSpan(0, Math.Min((int)size, known.Length)).CopyTo(known);
        var span = known.AsSpan();
        long flags = BitConverter.ToInt64(span[AttrFlags..]);
        if ((flags & SCHED_FLAG_UTIL_CLAMP) != 0 && size < SCHED_ATTR_SIZE_VER1) throw new SyscallError(Errno.EINVAL);
        int policy = BitConverter.ToInt32(span[AttrPolicy..]);
        if (policy < 0) throw new SyscallError(Errno.EINVAL);
        AskSet(c, c.IntArg(0), new SchedAttr(policy, flags, BitConverter.ToInt32(span[AttrNice..]), BitConverter.ToInt32(span[AttrPriority..]),
            BitConverter.ToInt64(span[AttrRuntime..]), BitConverter.ToInt64(span[AttrDeadline..]), BitConverter.ToInt64(span[AttrPeriod..])), legacy: false);
    }

    private const int PageSize = 4096;

    private static void TooBig(SyscallCall c, ulong uattr)
    {
        GuestMemory.Write(c.Tid, uattr + AttrSize, (uint)SCHED_ATTR_SIZE_VER1);
        throw new SyscallError(Errno.E2BIG);
    }

    /// <summary>Sched sets the attributes and answers the syscall's result. Whatever it set stays off the host but a
    /// nice value above 0 (the class comment).</summary>
    private static void AskSet(SyscallCall c, int who, SchedAttr attr, bool legacy)
    {
        var target = TaskOf(c, who);
        c.ServerUsed = Server.Sched;
        var request = new AttrRequest(Creds(c, c.Task), who, attr, legacy, target is null ? [] : [Creds(c, target)]);
        int result = c.Kernel.Sched.Call(s => s.SetAttrAsync(request));
        if (result == 0 && target is not null && c.Kernel.Sched.Call(s => s.GetAttrAsync(target.Vtid)) is { } now)
        {
            Native.Interop.SetHostNice(target.HostTid, now.Policy is SCHED_NORMAL or SCHED_BATCH or SCHED_IDLE ? Math.Max(now.Nice, 0) : 0);
            target.DeadlineNoFork = now.Policy == SCHED_DEADLINE && (now.Flags & SCHED_FLAG_RESET_ON_FORK) == 0;
        }
        c.Return(result);
    }

    /// <summary>
    /// sched_getattr: EINVAL for no struct, a negative pid, a size below the first version's or above a page, or any
    /// flags; ESRCH for no thread; then Sched's record is written, cut to the size given, with the size written
    /// set to the smaller of the two (sched_attr_copy_to_user). No utilisation clamps are kept (0).
    /// </summary>
    private static void GetAttr(SyscallCall c)
    {
        ulong uattr = c.Arg(1);
        uint usize = (uint)c.Arg(2);
        if (uattr == 0 || c.IntArg(0) < 0 || usize is < SCHED_ATTR_SIZE_VER0 or > PageSize || c.IntArg(3) != 0) throw new SyscallError(Errno.EINVAL);
        var attr = AttrOf(c, c.IntArg(0));
        var bytes = new byte[SCHED_ATTR_SIZE_VER1];
        var span = bytes.AsSpan();
        int size = (int)Math.Min(usize, (uint)SCHED_ATTR_SIZE_VER1);
        BitConverter.TryWriteBytes(span[AttrSize..], (uint)size);
        BitConverter.TryWriteBytes(span[AttrPolicy..], attr.Policy);
        BitConverter.TryWriteBytes(span[AttrFlags..], attr.Flags & SCHED_FLAG_ALL);
        // get_params: only a normal thread's nice value is reported.
        if (attr.Policy is not (SCHED_FIFO or SCHED_RR or SCHED_DEADLINE)) BitConverter.TryWriteBytes(span[AttrNice..], attr.Nice);
        BitConverter.TryWriteBytes(span[AttrPriority..], attr.Priority);
        BitConverter.TryWriteBytes(span[AttrRuntime..], attr.RuntimeNs);
        BitConverter.TryWriteBytes(span[AttrDeadline..], attr.DeadlineNs);
        BitConverter.TryWriteBytes(span[AttrPeriod..], attr.PeriodNs);
        GuestMemory.Write(c.Tid, uattr, span[..size]);
        c.Return(0);
    }

    /// <summary>
    /// sched_rr_get_interval: SCHED_RR's slice (RR_TIMESLICE, as the run policy rotates them), 0 for FIFO and DEADLINE,
    /// which have none; a normal thread's is the host's, which runs it whenever the vCPUs are not contended.
    /// </summary>
    private static void RrInterval(SyscallCall c)
    {
        if (c.IntArg(0) < 0) throw new SyscallError(Errno.EINVAL);
        var attr = AttrOf(c, c.IntArg(0));
        if (attr.Policy is SCHED_RR or SCHED_FIFO or SCHED_DEADLINE)
        {
            long ns = attr.Policy == SCHED_RR ? RR_TIMESLICE_NS : 0;
            Span<long> timespec = [ns / 1_000_000_000, ns % 1_000_000_000];
            GuestMemory.Write(c.Tid, c.Arg(1), System.Runtime.InteropServices.MemoryMarshal.AsBytes(timespec));
            c.Return(0);
            return;
        }
        PidTranslation.TranslateArg(c, 0);
    }

    /// <summary>Thread <paramref name="who"/>'s attributes (the caller's for 0) as Sched keeps them: ESRCH for none, and
    /// EINVAL for a negative pid, which Linux checks first.</summary>
    private static SchedAttr AttrOf(SyscallCall c, int who)
    {
        if (who < 0) throw new SyscallError(Errno.EINVAL);
        c.ServerUsed = Server.Sched;
        int vtid = who == 0 ? c.Task.Vtid : who;
        return c.Kernel.Sched.Call(s => s.GetAttrAsync(vtid)) ?? throw new SyscallError(Errno.ESRCH);
    }

    /// <summary>The guest thread <paramref name="who"/> names (0: the caller), or null.</summary>
    private static GuestTask? TaskOf(SyscallCall c, int who) =>
        who == 0 ? c.Task : who < 0 ? null : c.Kernel.Tasks.Snapshot().FirstOrDefault(t => t.Vtid == who);

    /// <summary>A thread's credentials from the host. One that is gone meanwhile (its exit is the next event) owns nothing
    /// the caller may touch: nobody's ids, no capability, no limit; the caller itself being gone, nothing sees the answer.</summary>
    private static TaskCreds Creds(SyscallCall c, GuestTask t) =>
        HostStatus.SchedCreds(t.HostTid, t.Vtid) ?? (t == c.Task ? throw new GuestFault(0) : new TaskCreds(t.Vtid, uint.MaxValue, uint.MaxValue, false, 0, 0));

    /// <summary>The credentials of every guest thread, for a call that names a process group or a user.</summary>
    private static IReadOnlyList<TaskCreds> AllCreds(SyscallCall c) =>
        [.. c.Kernel.Tasks.Snapshot().Where(t => t.Vtid != 0).Select(t => Creds(c, t))];

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
