using System.Text;
using UmlMicro.Supervisor.Scheduling;

namespace UmlMicro.Tests.Unit;

/// <summary>How the scheduler reads a host thread's state.</summary>
public class HostThreadStateTests
{
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
    public void A_thread_that_spins_has_used_cpu_time_that_grows()
    {
        int tid = int.Parse(Path.GetFileName(new FileInfo("/proc/thread-self").LinkTarget!));
        long before = HostThreadState.ReadRunNs(tid) ?? -1, after = before;
        var until = DateTime.UtcNow.AddSeconds(10);
        while (after <= before && DateTime.UtcNow < until) after = HostThreadState.ReadRunNs(tid) ?? -1;
        Assert.True(before > 0 && after > before, $"{before} -> {after}");
        Assert.Null(HostThreadState.ReadRunNs(int.MaxValue));
    }
}
