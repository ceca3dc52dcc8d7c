using System.Diagnostics;

namespace UmlMicro.Supervisor.Servers;

/// <summary>
/// An end of the run that does not come from the guest: SIGINT, SIGTERM, SIGHUP or SIGQUIT sent to the supervisor,
/// --timeout, or a server's mistake found off the tracer thread (the post sender's checkpoint). The guest is told
/// first — the signal goes to guest pid 1, the timeout and a mistake kill it — and that needs the tracer; but a tracer
/// waiting for a server cannot act on it. So every wait for a server goes through <see cref="Wait"/>: once a signal
/// has waited <see cref="Grace"/> for the tracer to hand it to pid 1 (or the timeout for pid 1 to be gone), the wait
/// is given up (<see cref="RunInterrupted"/>), and so is every later one not answered at once, and the guest ends. A
/// guest that handles the signal and goes on is not disturbed: the tracer hands it over at once.
/// </summary>
internal sealed class RunEnding
{
    /// <summary>How long a signal or the timeout may wait for the tracer before server waits are given up.</summary>
    public static readonly TimeSpan Grace = TimeSpan.FromSeconds(1);

    /// <summary>How often a wait looks at whether it must be given up; an answer ends it at once, whatever this is.</summary>
    private static readonly TimeSpan Slice = TimeSpan.FromMilliseconds(200);

    private readonly Lock _gate = new();
    private long _signalAt, _timeoutAt; // Stopwatch timestamps; 0: none pending
    private string _signalName = "";
    private volatile string? _givenUp;
    private Action? _killGuest;

    /// <summary>A server's mistake found off the tracer thread: what the run ended of (first one wins).</summary>
    public Exception? Failure { get; private set; }

    /// <summary>The last signal sent to the supervisor while the guest ran (0: none).</summary>
    public int Signal { get; private set; }

    /// <summary>Signal <paramref name="number"/> (<paramref name="name"/>) was sent to guest pid 1 on the supervisor's behalf.</summary>
    public void Signalled(int number, string name)
    {
        lock (_gate)
        {
            Signal = number;
            _signalName = name;
            Volatile.Write(ref _signalAt, Stopwatch.GetTimestamp());
        }
    }

    /// <summary>The tracer handed <paramref name="signal"/> to pid 1: the guest acts on it, no wait need be given up.</summary>
    public void Delivered(int signal)
    {
        if (signal == Signal) Volatile.Write(ref _signalAt, 0);
    }

    /// <summary>--timeout killed pid 1; the tracer must see it to end the guest.</summary>
    public void TimedOut() => Volatile.Write(ref _timeoutAt, Stopwatch.GetTimestamp());

    /// <summary>A server's mistake found where no guest waits for it: the run ends of it, now.</summary>
    public void Fail(Exception failure)
    {
        lock (_gate)
        {
            Failure ??= failure;
            _givenUp ??= failure.Message;
            _killGuest?.Invoke();
        }
    }

    /// <summary>How to end the guest (kill pid 1), from when it runs until <see cref="GuestOver"/>.</summary>
    public void KillGuestWith(Action kill)
    {
        lock (_gate) _killGuest = kill;
    }

    /// <summary>
    /// The tracer is done: no signal or timeout waits for it any more, so later waits (the end's own messages, --stats)
    /// are given up only if one already was.
    /// </summary>
    public void GuestOver()
    {
        lock (_gate)
        {
            _killGuest = null;
            Volatile.Write(ref _signalAt, 0);
            Volatile.Write(ref _timeoutAt, 0);
        }
    }

    /// <summary>
    /// Waits up to <paramref name="timeout"/> for <paramref name="task"/>: true once it is done (failed too: the
    /// caller looks), false when time ran out. Throws <see cref="RunInterrupted"/> (naming <paramref name="server"/>
    /// and <paramref name="wire"/>) when the run is ending and this wait must be given up.
    /// </summary>
    public bool Wait(Task task, TimeSpan timeout, string server, string wire)
    {
        long start = Stopwatch.GetTimestamp();
        while (true)
        {
            var slice = Slice;
            if (timeout != Timeout.InfiniteTimeSpan)
            {
                var left = timeout - Stopwatch.GetElapsedTime(start);
                if (left <= TimeSpan.Zero) return task.IsCompleted;
                if (left < slice) slice = left;
            }
            try
            {
                if (task.Wait(slice)) return true;
            }
            catch (AggregateException)
            {
                return true;
            }
            if (GivenUp() is { } why) throw new RunInterrupted($"{why} while the kernel waited for the {server} server ({wire})");
        }
    }

    /// <summary>Why waits must be given up, or null.</summary>
    private string? GivenUp()
    {
        if (_givenUp is { } why) return why;
        string? now = Pending(ref _timeoutAt) ? "--timeout" : Pending(ref _signalAt) ? _signalName : null;
        if (now is null) return null;
        lock (_gate) return _givenUp ??= now;
    }

    private static bool Pending(ref long since)
    {
        long at = Volatile.Read(ref since);
        return at != 0 && Stopwatch.GetElapsedTime(at) >= Grace;
    }
}
