using UmlMicro.Contracts.Servers;

namespace UmlMicro.Servers.Sched.Policies;

/// <summary>
/// Fair share weighted by nice, as Linux's CFS: each thread's CPU time is counted in virtual time, scaled by its nice
/// value's load weight (a nice 5 thread's clock runs about three times as fast as a nice 0 one's), and the thread that
/// is furthest behind runs next. A running thread gives way once it is half a quantum of virtual time ahead of a
/// waiting one and has run half a quantum, so two CPU-bound threads of nice 0 and 5 on one vCPU share it about 3:1.
/// A thread that slept long comes back at most a quantum behind the others, as CFS places a waking task: sleeping
/// earns no credit to starve the rest with.
/// </summary>
internal sealed class FairSharePolicy(TimeSpan quantum) : IRunPolicy
{
    private sealed class Account
    {
        public double Vruntime;
        public long RunNs;
    }

    private readonly Dictionary<int, Account> _accounts = [];
    private readonly double _quantumNs = quantum.Ticks * 100.0;
    /// <summary>Never goes back: where a new thread starts.</summary>
    private double _floor;

    public VcpuDecision Decide(VcpuTick tick)
    {
        foreach (var t in tick.Threads) Charge(t);
        var present = tick.Threads.Select(t => _accounts[t.Vtid].Vruntime).DefaultIfEmpty(_floor);
        _floor = Math.Max(_floor, present.Min());
        foreach (var t in tick.Threads.Where(t => t.Standing != VcpuStanding.Running))
            _accounts[t.Vtid].Vruntime = Math.Max(_accounts[t.Vtid].Vruntime, _floor - _quantumNs);

        var next = tick.Threads.Where(t => t.Standing != VcpuStanding.Running)
            .OrderBy(t => _accounts[t.Vtid].Vruntime).ThenByDescending(t => t.WaitNs).ThenBy(t => t.Vtid).ToList();
        var running = tick.Threads.Where(t => t.Standing == VcpuStanding.Running && t.SliceNs >= _quantumNs / 2)
            .OrderByDescending(t => _accounts[t.Vtid].Vruntime).ToList();
        var preempt = new List<int>();
        foreach (var (waiter, runner) in next.Zip(running))
        {
            if (_accounts[runner.Vtid].Vruntime - _accounts[waiter.Vtid].Vruntime < _quantumNs / 2) break;
            preempt.Add(runner.Vtid);
        }
        return new VcpuDecision(preempt, [.. next.Select(t => t.Vtid)]);
    }

    public void Forget(int vtid) => _accounts.Remove(vtid);

    /// <summary>The CPU time used since the last tick, weighted; a thread seen the first time starts at the floor.</summary>
    private void Charge(VcpuThread t)
    {
        if (!_accounts.TryGetValue(t.Vtid, out var account))
        {
            _accounts[t.Vtid] = new Account { Vruntime = _floor, RunNs = t.RunNs };
            return;
        }
        long ran = Math.Max(0, t.RunNs - account.RunNs);
        account.RunNs = Math.Max(account.RunNs, t.RunNs);
        account.Vruntime += ran * (NiceWeight.Nice0 / (double)NiceWeight.Of(t.Nice));
    }
}
