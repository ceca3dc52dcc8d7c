using System.Text;
using UmlMicro.Supervisor.Guest;
using UmlMicro.Supervisor.Scheduling;

namespace UmlMicro.Tests.Unit;

/// <summary>The run policies' decisions, and how the scheduler reads a host thread's state.</summary>
public class RunPolicyTests
{
    private static SchedEntity Thread(int vtid, int nice = 0, long sliceStart = 0, long grantedAt = 0) =>
        new(new GuestTask(hostTid: 1000 + vtid) { Vtid = vtid }) { Nice = nice, SliceStart = sliceStart, GrantedAt = grantedAt };

    [Fact]
    public void Round_robin_hands_out_vcpus_in_arrival_order_and_forgets_a_thread_that_left()
    {
        var rr = new RoundRobinPolicy(TimeSpan.FromMilliseconds(10));
        SchedEntity a = Thread(2), b = Thread(3), c = Thread(4);
        rr.Enqueue(a, EnqueueReason.New);
        rr.Enqueue(b, EnqueueReason.Preempted);
        rr.Enqueue(c, EnqueueReason.Yielded);
        rr.Remove(b);
        Assert.Equal(2, rr.Waiting);
        Assert.Same(a, rr.PickNext());
        Assert.Same(c, rr.PickNext());
        Assert.Null(rr.PickNext());
    }

    [Fact]
    public void Round_robin_quantum_follows_the_nice_weight()
    {
        var rr = new RoundRobinPolicy(TimeSpan.FromMilliseconds(10));
        Assert.False(rr.QuantumExpired(Thread(2), TimeSpan.FromMilliseconds(9)));
        Assert.True(rr.QuantumExpired(Thread(2), TimeSpan.FromMilliseconds(10)));
        Assert.True(rr.QuantumExpired(Thread(2, nice: 5), TimeSpan.FromMilliseconds(4))); // 335/1024 of 10 ms
        Assert.False(rr.QuantumExpired(Thread(2, nice: -5), TimeSpan.FromMilliseconds(20))); // 3121/1024 of 10 ms
    }

    [Fact]
    public void Round_robin_stops_the_thread_that_ran_longest_and_fifo_the_one_granted_last()
    {
        SchedEntity old = Thread(2, sliceStart: 100, grantedAt: 100), young = Thread(3, sliceStart: 200, grantedAt: 200);
        Assert.Same(old, new RoundRobinPolicy(TimeSpan.FromMilliseconds(10)).ChooseVictim([young, old]));
        Assert.Same(young, new FifoPolicy().ChooseVictim([old, young]));
    }

    [Fact]
    public void Fifo_never_preempts_and_puts_a_thread_stopped_for_overcommit_first()
    {
        var fifo = new FifoPolicy();
        Assert.False(fifo.QuantumExpired(Thread(2), TimeSpan.FromHours(1)));
        SchedEntity waiting = Thread(2), stopped = Thread(3);
        fifo.Enqueue(waiting, EnqueueReason.New);
        fifo.Enqueue(stopped, EnqueueReason.Overcommitted);
        Assert.Same(stopped, fifo.PickNext());
        Assert.Same(waiting, fifo.PickNext());
    }

    [Theory]
    [InlineData("1234 (sh) R 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 5 1000 100", 'R', 0)]
    [InlineData("77 (a b) c)) S 1 77 77 0 -1 0 0 0 0 0 0 0 0 0 25 5 1 0 5 1000 100", 'S', 5)]
    [InlineData("78 (x) t 1 78 78 0 -1 0 0 0 0 0 0 0 0 0 0 -20 1 0 5 1000 100", 't', -20)]
    public void Host_thread_state_and_nice_are_read_from_proc_stat(string line, char state, int nice)
    {
        Assert.Equal(new HostThreadState(state, nice), HostThreadState.Parse(Encoding.ASCII.GetBytes(line)));
    }

    [Fact]
    public void A_live_thread_has_a_state_and_a_gone_one_has_none()
    {
        Assert.True(HostThreadState.Read(Environment.ProcessId) is { State: 'R' or 'S' or 'D' });
        Assert.Null(HostThreadState.Read(int.MaxValue));
    }

    [Fact]
    public void Policies_are_chosen_by_name()
    {
        Assert.IsType<RoundRobinPolicy>(RunPolicies.Create("round-robin", TimeSpan.FromMilliseconds(10)));
        Assert.IsType<FifoPolicy>(RunPolicies.Create("fifo", TimeSpan.FromMilliseconds(10)));
        Assert.Throws<ArgumentException>(() => RunPolicies.Create("lottery-of-doom", TimeSpan.FromMilliseconds(10)));
    }
}
