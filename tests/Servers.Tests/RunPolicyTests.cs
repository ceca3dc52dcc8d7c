using UmlMicro.Contracts.Servers;
using UmlMicro.Servers.Sched.Policies;

namespace UmlMicro.ServersTests;

/// <summary>Sched's run policies: what each decides from a tick's facts.</summary>
public sealed class RunPolicyTests
{
    private static readonly TimeSpan Quantum = TimeSpan.FromMilliseconds(10);
    private const long Ms = 1_000_000;

    private static VcpuThread Running(int vtid, long sliceMs, int nice = 0, long runMs = 0) =>
        new(vtid, nice, VcpuStanding.Running, runMs * Ms, sliceMs * Ms, 0);

    private static VcpuThread Waiting(int vtid, long waitMs = 1, VcpuStanding standing = VcpuStanding.New, int nice = 0, long runMs = 0) =>
        new(vtid, nice, standing, runMs * Ms, 0, waitMs * Ms);

    private static VcpuTick Tick(params VcpuThread[] threads) => new(1, threads);

    [Fact]
    public void Round_robin_hands_out_vcpus_in_arrival_order_and_preempts_who_used_its_quantum()
    {
        var rr = new RoundRobinPolicy(Quantum);
        var d = rr.Decide(Tick(Running(1, 4), Waiting(2, waitMs: 3), Waiting(3, waitMs: 1)));
        Assert.Empty(d.Preempt);
        Assert.Equal([2, 3], d.Next);

        // 4 joins later but waited longer than nobody already queued: it goes behind them.
        d = rr.Decide(Tick(Running(1, 11), Waiting(3, waitMs: 6), Waiting(4, waitMs: 9), Waiting(2, waitMs: 8)));
        Assert.Equal([1], d.Preempt);
        Assert.Equal([2, 3, 4], d.Next);

        // A thread that left the queue (it got a vCPU) or ended is forgotten.
        rr.Forget(3);
        d = rr.Decide(Tick(Running(2, 1), Waiting(4), Waiting(1, standing: VcpuStanding.Preempted)));
        Assert.Equal([4, 1], d.Next);
    }

    [Fact]
    public void Round_robin_quantum_follows_the_nice_weight()
    {
        var rr = new RoundRobinPolicy(Quantum);
        Assert.Equal(10 * Ms, rr.QuantumNs(0));
        Assert.Equal([1], rr.Decide(Tick(Running(1, 4, nice: 5), Waiting(2))).Preempt); // 335/1024 of 10 ms
        Assert.Empty(rr.Decide(Tick(Running(1, 20, nice: -5), Waiting(2))).Preempt); // 3121/1024 of 10 ms
    }

    [Fact]
    public void Round_robin_preempts_no_more_threads_than_wait()
    {
        var d = new RoundRobinPolicy(Quantum).Decide(new VcpuTick(2, [Running(1, 30), Running(2, 50), Waiting(3)]));
        Assert.Equal([2], d.Preempt);
    }

    [Fact]
    public void Fifo_never_preempts_and_puts_a_thread_stopped_for_overcommit_first()
    {
        var fifo = new FifoPolicy();
        var d = fifo.Decide(Tick(Running(1, 10_000), Waiting(2, waitMs: 5), Waiting(3, standing: VcpuStanding.Overcommitted)));
        Assert.Empty(d.Preempt);
        Assert.Equal([3, 2], d.Next);
    }

    [Fact]
    public void Fair_share_runs_the_thread_furthest_behind_and_weights_time_by_nice()
    {
        var fair = new FairSharePolicy(Quantum);
        fair.Decide(Tick(Running(1, 0, runMs: 0), Waiting(2, runMs: 0, nice: 5)));
        // 1 (nice 0) ran 6 ms: 6 ms of virtual time ahead of 2, more than half a quantum: it gives way.
        var d = fair.Decide(Tick(Running(1, 6, runMs: 6), Waiting(2, runMs: 0, nice: 5)));
        Assert.Equal([1], d.Preempt);
        Assert.Equal([2], d.Next);
        // 2 (nice 5) ran 6 ms: its clock runs 1024/335 as fast, about 18 ms: now 12 ms ahead of 1, which goes next.
        d = fair.Decide(Tick(Running(2, 6, nice: 5, runMs: 6), Waiting(1, runMs: 6, standing: VcpuStanding.Preempted)));
        Assert.Equal([2], d.Preempt);
        // 1 then runs until it is half a quantum ahead again: 12 ms more is not enough, 18 ms is.
        Assert.Empty(fair.Decide(Tick(Running(1, 12, runMs: 18), Waiting(2, runMs: 6, nice: 5, standing: VcpuStanding.Preempted))).Preempt);
        Assert.Equal([1], fair.Decide(Tick(Running(1, 18, runMs: 24), Waiting(2, runMs: 6, nice: 5, standing: VcpuStanding.Preempted))).Preempt);
    }

    [Fact]
    public void Fair_share_gives_no_credit_for_a_long_sleep_and_a_new_thread_starts_level()
    {
        var fair = new FairSharePolicy(Quantum);
        fair.Decide(Tick(Running(1, 5, runMs: 0), Waiting(2, runMs: 0)));
        // 1 ran a long time alone (no ticks while nobody waits); 2 comes back at most a quantum behind it.
        var d = fair.Decide(Tick(Running(1, 5, runMs: 1000), Waiting(2, runMs: 0), Waiting(3, runMs: 0)));
        Assert.Equal([1], d.Preempt);
        // 2 runs a quantum and a half: it is then ahead of 1, and 3 started level with the rest.
        d = fair.Decide(Tick(Running(2, 15, runMs: 15), Waiting(3, runMs: 0), Waiting(1, runMs: 1000, standing: VcpuStanding.Preempted)));
        Assert.Equal([2], d.Preempt);
        Assert.Equal(3, d.Next[0]);
    }

    [Fact]
    public void Policies_are_chosen_by_name()
    {
        Assert.IsType<RoundRobinPolicy>(RunPolicies.Create("round-robin", Quantum));
        Assert.IsType<FifoPolicy>(RunPolicies.Create("fifo", Quantum));
        Assert.IsType<FairSharePolicy>(RunPolicies.Create("fair-share", Quantum));
        Assert.Null(RunPolicies.Create("lottery-of-doom", Quantum));
    }
}
