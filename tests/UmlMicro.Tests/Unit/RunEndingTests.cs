using UmlMicro.Supervisor.Servers;

namespace UmlMicro.Tests.Unit;

/// <summary>
/// When a wait for a server is given up: a signal the tracer could not hand to pid 1 within the grace, --timeout, or
/// a mistake found off the tracer; never a wait whose answer comes, nor one after the signal was handed over.
/// </summary>
public class RunEndingTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(30);

    private static Task Never() => new TaskCompletionSource().Task;

    [Fact]
    public void An_answer_ends_the_wait_and_time_running_out_is_false()
    {
        var ending = new RunEnding();
        Assert.True(ending.Wait(Task.CompletedTask, Long, "sched", "sched/parent"));
        Assert.True(ending.Wait(Task.FromException(new InvalidOperationException()), Long, "sched", "sched/parent"));
        Assert.False(ending.Wait(Never(), TimeSpan.FromMilliseconds(50), "sched", "sched/parent"));
    }

    [Fact]
    public void A_signal_not_handed_over_gives_the_wait_up_naming_the_server_and_the_wire_method()
    {
        var ending = new RunEnding();
        ending.Signalled(15, "SIGTERM");
        var e = Assert.Throws<RunInterrupted>(() => ending.Wait(Never(), Long, "sched", "sched/parent"));
        Assert.Equal("SIGTERM while the kernel waited for the sched server (sched/parent)", e.Message);
        Assert.Equal(15, ending.Signal);
    }

    [Fact]
    public void A_signal_handed_over_leaves_waits_alone()
    {
        var ending = new RunEnding();
        ending.Signalled(2, "SIGINT");
        ending.Delivered(2);
        Assert.False(ending.Wait(Never(), RunEnding.Grace * 2, "vfs", "vfs/resolve"));
    }

    [Fact]
    public void The_timeout_gives_waits_up_until_the_guest_is_over()
    {
        var ending = new RunEnding();
        ending.TimedOut();
        Assert.Contains("--timeout", Assert.Throws<RunInterrupted>(() => ending.Wait(Never(), Long, "mm", "mm/reserve")).Message);

        var after = new RunEnding();
        after.TimedOut();
        after.GuestOver();
        Assert.False(after.Wait(Never(), RunEnding.Grace * 2, "mm", "mm/usage"));
    }

    [Fact]
    public void A_failure_off_the_tracer_kills_the_guest_and_gives_waits_up()
    {
        var ending = new RunEnding();
        int killed = 0;
        ending.KillGuestWith(() => killed++);
        var mistake = new ServerMistake("sched", "sched/reserve_pids", "answered [3,2], not [2,3] as before");
        ending.Fail(mistake);

        Assert.Equal(1, killed);
        Assert.Same(mistake, ending.Failure);
        Assert.Throws<RunInterrupted>(() => ending.Wait(Never(), Long, "sched", "sched/parent"));
    }
}
