using UmlMicro.Contracts.Servers;

namespace UmlMicro.Servers.Sched.Policies;

/// <summary>
/// Round-robin with a time quantum, the default: threads wait in one queue in arrival order; a running thread that
/// has used its quantum while others wait goes to the back of it. Nice scales the quantum by its load weight relative
/// to nice 0, so a nice 5 thread gets about a third of the time of a nice 0 one when both are CPU-bound on one vCPU.
/// </summary>
internal sealed class RoundRobinPolicy(TimeSpan quantum) : IRunPolicy
{
    private readonly ArrivalQueue _queue = new();

    public VcpuDecision Decide(VcpuTick tick)
    {
        _queue.Update(tick.Threads.Where(t => t.Standing != VcpuStanding.Running), static _ => false);
        int waiting = _queue.Order.Count;
        var preempt = tick.Threads
            .Where(t => t.Standing == VcpuStanding.Running && t.SliceNs >= QuantumNs(t.Nice))
            .OrderByDescending(t => t.SliceNs)
            .Take(waiting)
            .Select(t => t.Vtid)
            .ToList();
        return new VcpuDecision(preempt, [.. _queue.Order]);
    }

    public void Forget(int vtid) => _queue.Remove(vtid);

    /// <summary>The quantum scaled by the nice value's load weight.</summary>
    public long QuantumNs(int nice) => (long)(quantum.Ticks * 100 * (NiceWeight.Of(nice) / (double)NiceWeight.Nice0));
}
