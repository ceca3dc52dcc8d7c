using StreamJsonRpc;
using UmlMicro.Contracts.Servers;
using static UmlMicro.Contracts.Linux.SchedAbi;
using Errno = UmlMicro.Contracts.Linux.Errno;

namespace UmlMicro.Servers.Sched;

/// <summary>
/// The scheduling attributes Sched keeps for each thread (nice, policy, real-time priority, DEADLINE parameters,
/// reset-on-fork) and the calls that read and set them, with the rules of Linux's kernel/sys.c (setpriority,
/// getpriority, set_one_prio) and kernel/sched/syscalls.c (__sched_setscheduler, user_check_sched_setscheduler,
/// __checkparam_dl) in their order. The credentials come with each call (<see cref="TaskCreds"/>): the supervisor
/// reads them from the host, where the guest's ids, capabilities and rlimits live.
/// </summary>
internal sealed class Priorities(ProcessTable table, Func<int> cpus)
{
    /// <summary>A thread's attributes when nothing set them: SCHED_NORMAL at nice 0, as Linux's init starts.</summary>
    public static readonly SchedAttr Default = new(SCHED_NORMAL, 0, 0, 0);

    public int GetPriority(PriorityRequest r)
    {
        if (Targets(r) is not { } targets) return -Errno.EINVAL;
        int best = -Errno.ESRCH;
        foreach (var t in targets) best = Math.Max(best, NiceToRlimit(t.Attr.Nice));
        return best;
    }

    /// <summary>setpriority: each thread named in turn, as set_one_prio; a refusal sticks, a later success does not clear it.</summary>
    public PriorityAnswer SetPriority(PriorityRequest r)
    {
        if (Targets(r) is not { } found) return new PriorityAnswer(-Errno.EINVAL, []);
        var targets = found.ToList();
        var owners = Owners(r.Owners, targets);
        int nice = Math.Clamp(r.Nice, MIN_NICE, MAX_NICE);
        int error = -Errno.ESRCH;
        var changed = new List<int>();
        foreach (var t in targets)
        {
            var owner = owners[t.Tid];
            if (!SameOwnerForNice(r.Caller, owner) && !r.Caller.CapSysNice) error = -Errno.EPERM;
            else if (nice < t.Attr.Nice && !MayLowerNice(owner, nice) && !r.Caller.CapSysNice) error = -Errno.EACCES;
            else
            {
                if (error == -Errno.ESRCH) error = 0;
                t.Attr = t.Attr with { Nice = nice };
                changed.Add(t.Tid);
            }
        }
        return new PriorityAnswer(error, changed);
    }

    /// <summary>sched_setattr, sched_setscheduler, sched_setparam: __sched_setscheduler with its user checks.</summary>
    public int SetAttr(AttrRequest r)
    {
        var caller = Live((r.Caller ?? throw ProtocolViolation.Of("no caller")).Vtid);
        GuestThread? target = r.Who == 0 ? caller : table.TryGetThread(r.Who, out var named) ? named : null;
        if (target is null) return -Errno.ESRCH;
        var owner = Owners(r.Owners, [target])[target.Tid];
        var cur = target.Attr;
        var a = r.Attr ?? throw ProtocolViolation.Of("no attributes to set");
        int policy = a.Policy;
        long flags = a.Flags;
        int nice = r.Legacy ? cur.Nice : Math.Clamp(a.Nice, MIN_NICE, MAX_NICE);
        if (!r.Legacy)
        {
            if ((flags & SCHED_FLAG_KEEP_POLICY) != 0) policy = SETPARAM_POLICY;
            if ((flags & SCHED_FLAG_KEEP_PARAMS) != 0)
            {
                // get_params: the thread's own parameters of its own class replace the ones given.
                if (cur.Policy == SCHED_DEADLINE)
                {
                    a = a with { Priority = cur.Priority, RuntimeNs = cur.RuntimeNs, DeadlineNs = cur.DeadlineNs, PeriodNs = cur.PeriodNs };
                    flags |= cur.Flags & DeadlineFlags;
                }
                else if (RealTime(cur.Policy)) a = a with { Priority = cur.Priority };
                else nice = cur.Nice;
            }
        }
        bool resetOnFork;
        if (policy < 0)
        {
            resetOnFork = (cur.Flags & SCHED_FLAG_RESET_ON_FORK) != 0;
            policy = cur.Policy;
        }
        else
        {
            resetOnFork = (flags & SCHED_FLAG_RESET_ON_FORK) != 0;
            if (!ValidPolicy(policy)) return -Errno.EINVAL;
        }
        if ((flags & ~(SCHED_FLAG_ALL | SCHED_FLAG_SUGOV)) != 0) return -Errno.EINVAL;
        if (a.Priority is < 0 or > MAX_RT_PRIO - 1) return -Errno.EINVAL; // sched_priority is unsigned in the kernel
        if ((policy == SCHED_DEADLINE && !DeadlineParamsValid(a, flags)) || RealTime(policy) != (a.Priority != 0)) return -Errno.EINVAL;
        if (NeedsCapSysNice(r.Caller, owner, cur, policy, nice, a.Priority, resetOnFork) && !r.Caller.CapSysNice) return -Errno.EPERM;
        if ((flags & SCHED_FLAG_SUGOV) != 0) return -Errno.EINVAL;
        // A kernel without CONFIG_UCLAMP_TASK: Sched keeps no utilisation clamps.
        if ((flags & SCHED_FLAG_UTIL_CLAMP) != 0) return -Errno.EOPNOTSUPP;

        var next = new SchedAttr(policy, (resetOnFork ? SCHED_FLAG_RESET_ON_FORK : 0) | (policy == SCHED_DEADLINE ? flags & DeadlineFlags : 0),
            policy is SCHED_NORMAL or SCHED_BATCH ? nice : cur.Nice, a.Priority,
            policy == SCHED_DEADLINE ? a.RuntimeNs : 0, policy == SCHED_DEADLINE ? a.DeadlineNs : 0, policy == SCHED_DEADLINE ? a.PeriodNs : 0);
        if (policy == SCHED_DEADLINE && next != cur && !DeadlineFits(target, next)) return -Errno.EBUSY;
        target.Attr = next;
        return 0;
    }

    public SchedAttr? GetAttr(int vtid) => table.TryGetThread(vtid, out var t) ? t.Attr : null;

    /// <summary>What a new task starts with: its creator's attributes, or with reset-on-fork (sched_fork) a real-time or
    /// DEADLINE class back to SCHED_NORMAL at nice 0, a negative nice back to 0, and the flag cleared.</summary>
    public static SchedAttr Inherit(SchedAttr parent)
    {
        if ((parent.Flags & SCHED_FLAG_RESET_ON_FORK) == 0) return parent;
        if (parent.Policy == SCHED_DEADLINE || RealTime(parent.Policy)) return Default;
        return parent with { Flags = 0, Nice = Math.Max(parent.Nice, 0) };
    }

    /// <summary>The threads "which" and "who" name, in tid order; null for a "which" Linux does not know.</summary>
    private IEnumerable<GuestThread>? Targets(PriorityRequest r)
    {
        var caller = Live((r.Caller ?? throw ProtocolViolation.Of("no caller")).Vtid);
        switch (r.Which)
        {
            case PRIO_PROCESS:
                // find_task_by_vpid: "who" is a thread's id.
                return r.Who == 0 ? [caller] : table.TryGetThread(r.Who, out var t) ? [t] : [];
            case PRIO_PGRP:
                int pgid = r.Who == 0 ? caller.Process.Pgid : r.Who;
                return table.Processes.Where(p => p.Pgid == pgid).OrderBy(p => p.Pid).SelectMany(p => p.Threads.Values.OrderBy(t => t.Tid));
            case PRIO_USER:
                uint uid = r.Who == 0 ? r.Caller.Uid : (uint)r.Who;
                var users = (r.Owners ?? []).Where(o => o.Uid == uid).Select(o => o.Vtid).ToHashSet();
                return table.Processes.OrderBy(p => p.Pid).SelectMany(p => p.Threads.Values.OrderBy(t => t.Tid)).Where(t => users.Contains(t.Tid));
            default:
                return null;
        }
    }

    /// <summary>The credentials of each target, which the supervisor must have sent: else the books disagree.</summary>
    private static Dictionary<int, TaskCreds> Owners(IReadOnlyList<TaskCreds>? owners, IEnumerable<GuestThread> targets)
    {
        var byTid = new Dictionary<int, TaskCreds>();
        foreach (var o in owners ?? []) byTid[o.Vtid] = o;
        foreach (var t in targets)
            if (!byTid.ContainsKey(t.Tid)) throw ProtocolViolation.Of($"no credentials for thread {t.Tid}");
        return byTid;
    }

    private GuestThread Live(int vtid) =>
        table.TryGetThread(vtid, out var t) ? t : throw ProtocolViolation.Of($"no live thread {vtid}");

    /// <summary>set_one_prio_perm: the target's real or effective uid is the caller's effective uid.</summary>
    private static bool SameOwnerForNice(TaskCreds caller, TaskCreds owner) => owner.Uid == caller.Euid || owner.Euid == caller.Euid;

    /// <summary>can_nice's and is_nice_reduction's RLIMIT_NICE test (the target's limit).</summary>
    private static bool MayLowerNice(TaskCreds owner, int nice) => NiceToRlimit(nice) <= owner.NiceLimit;

    /// <summary>user_check_sched_setscheduler: whether the change needs CAP_SYS_NICE.</summary>
    private static bool NeedsCapSysNice(TaskCreds caller, TaskCreds owner, SchedAttr cur, int policy, int nice, int priority, bool resetOnFork)
    {
        if (policy is SCHED_NORMAL or SCHED_BATCH && nice < cur.Nice && !MayLowerNice(owner, nice)) return true;
        if (RealTime(policy))
        {
            if (policy != cur.Policy && owner.RtprioLimit == 0) return true;
            if (priority > cur.Priority && priority > owner.RtprioLimit) return true;
        }
        if (policy == SCHED_DEADLINE) return true; // applies even to root without the capability
        if (cur.Policy == SCHED_IDLE && policy != SCHED_IDLE && !MayLowerNice(owner, cur.Nice)) return true;
        if (caller.Euid != owner.Euid && caller.Euid != owner.Uid) return true; // check_same_owner
        return (cur.Flags & SCHED_FLAG_RESET_ON_FORK) != 0 && !resetOnFork;
    }

    /// <summary>__checkparam_dl: 2^DL_SCALE ns &lt;= runtime &lt;= deadline &lt;= period (the deadline when 0), the period
    /// within the sysctl bounds, no sign bit.</summary>
    private static bool DeadlineParamsValid(SchedAttr a, long flags)
    {
        if ((flags & SCHED_FLAG_SUGOV) != 0) return true;
        ulong runtime = (ulong)a.RuntimeNs, deadline = (ulong)a.DeadlineNs, period = (ulong)a.PeriodNs;
        if (deadline == 0 || runtime < 1UL << DL_SCALE) return false;
        if (((deadline | period) & 1UL << 63) != 0) return false;
        if (period == 0) period = deadline;
        if (period < deadline || deadline < runtime) return false;
        return period is >= DL_PERIOD_MIN_NS and <= DL_PERIOD_MAX_NS;
    }

    /// <summary>sched_dl_overflow: the DEADLINE threads' bandwidths (runtime / period) together within 95% of each vCPU.</summary>
    private bool DeadlineFits(GuestThread target, SchedAttr next)
    {
        static double Bandwidth(SchedAttr a) => a.RuntimeNs / (double)(a.PeriodNs == 0 ? a.DeadlineNs : a.PeriodNs);
        double total = table.Processes.SelectMany(p => p.Threads.Values)
            .Where(t => t != target && t.Attr.Policy == SCHED_DEADLINE).Sum(t => Bandwidth(t.Attr));
        return total + Bandwidth(next) <= cpus() * DL_BANDWIDTH;
    }
}
