using System.Diagnostics;

namespace UmlMicro.Supervisor.Servers;

/// <summary>One server restart, as --stats and the trace report it.</summary>
internal sealed record ServerRestart(string Server, DateTime At, string Why, TimeSpan Held, int Replayed, int Retried);

/// <summary>The servers kept dying faster than the restart budget allows: the guest is ended.</summary>
internal sealed class ServerCrashLoop(string message) : Exception(message);

/// <summary>
/// The reincarnation service's policy, as MINIX 3's reincarnation server has one: a server that dies is started
/// again, but no more than <paramref name="limit"/> times (over all servers) in any <paramref name="window"/>; a
/// kernel that cannot stay up ends the guest rather than restart forever. It also tells who wants to know
/// (--stats, the trace) about each restart.
/// </summary>
internal sealed class RestartBudget(int limit, TimeSpan window)
{
    private readonly Queue<long> _recent = new();
    private readonly List<ServerRestart> _restarts = [];
    private readonly Lock _gate = new();

    public event Action<ServerRestart>? Restarted;

    public IReadOnlyList<ServerRestart> Restarts
    {
        get { lock (_gate) return _restarts.ToList(); }
    }

    /// <summary>Takes one restart from the budget, or throws <see cref="ServerCrashLoop"/> when none is left.</summary>
    public void Take(string server, string why)
    {
        lock (_gate)
        {
            long now = Stopwatch.GetTimestamp();
            while (_recent.Count > 0 && Stopwatch.GetElapsedTime(_recent.Peek(), now) > window) _recent.Dequeue();
            if (_recent.Count >= limit)
                throw new ServerCrashLoop($"{server} server {why}, and the servers were already restarted {_recent.Count} times " +
                    $"in {window.TotalSeconds:0.#} s (Servers:RestartLimit); giving up");
            _recent.Enqueue(now);
        }
    }

    public void Report(ServerRestart restart)
    {
        lock (_gate) _restarts.Add(restart);
        Restarted?.Invoke(restart);
    }
}
