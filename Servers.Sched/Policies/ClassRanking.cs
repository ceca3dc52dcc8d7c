using System.Diagnostics;
using UmlMicro.Contracts.Servers;
using static UmlMicro.Contracts.Linux.SchedAbi;

namespace UmlMicro.Servers.Sched.Policies;

/// <summary>
/// Linux's scheduling classes over the vCPU grants, whatever the configured run policy: a DEADLINE thread that has
/// runtime left in its period ranks first (earliest absolute deadline first), then the real-time threads (SCHED_FIFO
/// and SCHED_RR, highest priority first), then the normal ones (SCHED_NORMAL, BATCH, IDLE), among which the run
/// policy decides; a DEADLINE thread that has used its runtime ranks last until its next period (Linux throttles it).
/// A waiting thread takes the vCPU of a running one that ranks below it at once; a SCHED_RR thread that has run
/// RR_TIMESLICE gives way to a waiting one of its priority; a SCHED_FIFO thread never gives way to its equals.
/// <para>
/// A DEADLINE thread's period starts when it is first seen at a tick and again whenever a period has passed; its
/// runtime is the CPU time it used since. This memory is soft, as a run policy's: it is forgotten when the thread
/// exits and on a restart.
/// </para>
/// </summary>
internal sealed class ClassRanking
{
    private sealed record Period(long StartNs, long RunNsAtStart);

    private readonly Dictionary<int, Period> _periods = [];
    private readonly Stopwatch _clock = Stopwatch.StartNew();

    /// <summary>The decision at <paramref name="tick"/>: the run policy alone while every thread is normal.</summary>
    public VcpuDecision Decide(VcpuTick tick, Func<int, SchedAttr> attrOf, IRunPolicy normal)
    {
        long now = (long)(_clock.ElapsedTicks * (1e9 / Stopwatch.Frequency));
        var rank = new Dictionary<int, (int Class, long Key)>();
        foreach (var t in tick.Threads) rank[t.Vtid] = Rank(t, attrOf(t.Vtid), now);
        if (rank.Values.All(r => r.Class == NormalClass)) return normal.Decide(tick);

        var normals = tick.Threads.Where(t => rank[t.Vtid].Class == NormalClass).ToList();
        var decided = normal.Decide(tick with { Threads = normals });
        var waiting = tick.Threads.Where(t => t.Standing != VcpuStanding.Running).ToList();
        var byRank = waiting.Where(t => rank[t.Vtid].Class != NormalClass)
            .OrderBy(t => rank[t.Vtid].Class).ThenBy(t => rank[t.Vtid].Key).ThenByDescending(t => t.WaitNs).ThenBy(t => t.Vtid).ToList();
        var next = byRank.Where(t => rank[t.Vtid].Class < NormalClass).Select(t => t.Vtid)
            .Concat(decided.Next)
            .Concat(byRank.Where(t => rank[t.Vtid].Class > NormalClass).Select(t => t.Vtid)).ToList();

        // Each waiter in order takes the vCPU of the lowest-ranked runner left, while that one ranks below it.
        var runners = tick.Threads.Where(t => t.Standing == VcpuStanding.Running)
            .OrderByDescending(t => rank[t.Vtid].Class).ThenByDescending(t => rank[t.Vtid].Key).ThenByDescending(t => t.SliceNs).ToList();
        var waiter = waiting.ToDictionary(t => t.Vtid);
        var preempt = new List<int>();
        int r = 0;
        foreach (int w in next)
        {
            if (r == runners.Count || !waiter.ContainsKey(w)) break;
            var runner = runners[r];
            if (!GivesWay(rank[runner.Vtid], rank[w], runner, attrOf(runner.Vtid))) break;
            preempt.Add(runner.Vtid);
            r++;
        }
        // The run policy's preemptions among the normal threads come after, within one per waiting thread.
        preempt.AddRange(decided.Preempt.Where(v => !preempt.Contains(v)));
        return new VcpuDecision([.. preempt.Take(waiting.Count)], next);
    }

    public void Forget(int vtid) => _periods.Remove(vtid);

    private const int DeadlineClass = 0, RealTimeClass = 1, NormalClass = 2, ThrottledClass = 3;

    private (int Class, long Key) Rank(VcpuThread t, SchedAttr a, long now)
    {
        if (a.Policy == SCHED_DEADLINE)
        {
            long period = a.PeriodNs == 0 ? a.DeadlineNs : a.PeriodNs;
            if (!_periods.TryGetValue(t.Vtid, out var p) || now - p.StartNs >= period) _periods[t.Vtid] = p = new Period(now, t.RunNs);
            long deadline = p.StartNs + a.DeadlineNs;
            return (t.RunNs - p.RunNsAtStart < a.RuntimeNs ? DeadlineClass : ThrottledClass, deadline);
        }
        _periods.Remove(t.Vtid);
        return RealTime(a.Policy) ? (RealTimeClass, MAX_RT_PRIO - 1 - a.Priority) : (NormalClass, 0);
    }

    /// <summary>A runner gives way to a waiter that ranks above it, and a SCHED_RR runner to its equal after its slice.</summary>
    private static bool GivesWay((int Class, long Key) runner, (int Class, long Key) waiter, VcpuThread running, SchedAttr a)
    {
        if (runner.Class != waiter.Class) return runner.Class > waiter.Class;
        if (runner.Class == NormalClass) return false; // the run policy's to decide
        if (runner.Key != waiter.Key) return runner.Key > waiter.Key;
        return a.Policy == SCHED_RR && running.SliceNs >= RR_TIMESLICE_NS;
    }
}
