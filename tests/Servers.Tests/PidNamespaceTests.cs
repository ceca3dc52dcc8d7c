using UmlMicro.Servers.Sched;

namespace UmlMicro.ServersTests;

public sealed class PidNamespaceTests
{
    [Fact]
    public void Numbers_start_at_1_and_increase()
    {
        var pids = new PidNamespace();

        Assert.Equal([1, 2, 3], new[] { pids.Alloc(), pids.Alloc(), pids.Alloc() });
    }

    [Fact]
    public void A_freed_number_is_not_reused_before_the_wrap()
    {
        var pids = new PidNamespace();
        pids.Alloc();
        int two = pids.Alloc();

        pids.Put(two);

        Assert.Equal(3, pids.Alloc());
        Assert.False(pids.IsTaken(two));
    }

    [Fact]
    public void The_wrap_restarts_above_the_reserved_numbers_and_skips_taken_ones()
    {
        var pids = new PidNamespace(pidMax: 20, reserved: 5);
        var taken = Enumerable.Range(0, 19).Select(_ => pids.Alloc()).ToList();
        Assert.Equal(Enumerable.Range(1, 19), taken);
        foreach (int nr in new[] { 2, 5, 6, 9 })
            pids.Put(nr);

        Assert.Equal(5, pids.Alloc());
        Assert.Equal(6, pids.Alloc());
        Assert.Equal(9, pids.Alloc());
        Assert.Equal(0, pids.Alloc());
    }

    [Fact]
    public void Before_the_cursor_passes_the_reserved_numbers_a_wrap_starts_at_1()
    {
        var pids = new PidNamespace(pidMax: 4, reserved: 300);
        Assert.Equal([1, 2, 3], new[] { pids.Alloc(), pids.Alloc(), pids.Alloc() });

        pids.Put(1);

        Assert.Equal(1, pids.Alloc());
    }

    [Fact]
    public void A_number_stays_taken_while_any_holder_is_left()
    {
        var pids = new PidNamespace();
        int nr = pids.Alloc();
        pids.Get(nr);

        pids.Put(nr);
        Assert.True(pids.IsTaken(nr));
        pids.Put(nr);

        Assert.False(pids.IsTaken(nr));
        Assert.Throws<InvalidOperationException>(() => pids.Put(nr));
        Assert.Throws<InvalidOperationException>(() => pids.Get(nr));
    }

    [Fact]
    public void The_full_pid_space_wraps_at_pid_max()
    {
        var pids = new PidNamespace();
        Assert.Equal(4 * 1024 * 1024, PidNamespace.DefaultPidMax);
        for (int i = 1; i < PidNamespace.DefaultPidMax - 1; i++)
            pids.Put(pids.Alloc());

        Assert.Equal(PidNamespace.DefaultPidMax - 1, pids.Alloc());
        Assert.Equal(PidNamespace.DefaultReserved, pids.Alloc());
    }
}
