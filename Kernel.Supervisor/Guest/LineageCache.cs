namespace UmlMicro.Supervisor.Guest;

/// <summary>
/// Sched's answers to getppid and getsid, kept until something that could change one happens: a task ends (its
/// children are reparented), a session is made, or a new task takes a number an old answer was about. Sched still
/// decides every answer; this only saves asking again for the same one (a round trip each).
/// </summary>
internal sealed class LineageCache
{
    private readonly Dictionary<int, int> _parent = new();
    private readonly Dictionary<int, int> _session = new();
    private readonly object _lock = new();
    private long _generation;

    /// <summary>The state answers are kept for: an answer asked for under an older one is not kept.</summary>
    public long Generation
    {
        get { lock (_lock) return _generation; }
    }

    public bool TryParent(int vpid, out int ppid)
    {
        lock (_lock) return _parent.TryGetValue(vpid, out ppid);
    }

    public bool TrySession(int vpid, out int sid)
    {
        lock (_lock) return _session.TryGetValue(vpid, out sid);
    }

    public void KeepParent(int vpid, int ppid, long generation) => Keep(_parent, vpid, ppid, generation);

    public void KeepSession(int vpid, int sid, long generation) => Keep(_session, vpid, sid, generation);

    /// <summary>A task ended or a session was made: every answer may be stale.</summary>
    public void Invalidate()
    {
        lock (_lock)
        {
            _generation++;
            _parent.Clear();
            _session.Clear();
        }
    }

    /// <summary>A new task took <paramref name="id"/>: what was known about an earlier holder of it is gone.</summary>
    public void Forget(int id)
    {
        lock (_lock)
        {
            _generation++;
            _parent.Remove(id);
            _session.Remove(id);
        }
    }

    private void Keep(Dictionary<int, int> answers, int vpid, int value, long generation)
    {
        lock (_lock)
        {
            if (generation == _generation) answers[vpid] = value;
        }
    }
}
