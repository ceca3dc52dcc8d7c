using UmlMicro.Contracts.Servers;

namespace UmlMicro.Servers.Sched.Policies;

/// <summary>
/// First come, first served, without preemption (like SCHED_FIFO at one priority): a thread keeps its vCPU until it
/// blocks in the host, yields or exits; the longest-waiting thread gets the next free one. A thread stopped because
/// too many ran goes to the front, as a SCHED_FIFO thread that is preempted stays at the head of its list.
/// </summary>
internal sealed class FifoPolicy : IRunPolicy
{
    private readonly ArrivalQueue _queue = new();

    public VcpuDecision Decide(VcpuTick tick)
    {
        _queue.Update(tick.Threads.Where(t => t.Standing != VcpuStanding.Running), static t => t.Standing == VcpuStanding.Overcommitted);
        return new VcpuDecision([], [.. _queue.Order]);
    }

    public void Forget(int vtid) => _queue.Remove(vtid);
}
