namespace UmlMicro.Supervisor.Guest;

/// <summary>Every live guest task, by host tid.</summary>
internal sealed class TaskTable
{
    private readonly Dictionary<int, GuestTask> _byHostTid = new();
    private readonly object _lock = new();

    public GuestTask? Find(int hostTid)
    {
        lock (_lock) return _byHostTid.GetValueOrDefault(hostTid);
    }

    public GuestTask GetOrAdd(int hostTid)
    {
        lock (_lock)
        {
            if (!_byHostTid.TryGetValue(hostTid, out var t)) _byHostTid[hostTid] = t = new GuestTask(hostTid);
            return t;
        }
    }

    public void Add(GuestTask task)
    {
        lock (_lock) _byHostTid[task.HostTid] = task;
    }

    public bool Remove(int hostTid, out GuestTask? task)
    {
        lock (_lock) return _byHostTid.Remove(hostTid, out task);
    }

    public int Count
    {
        get { lock (_lock) return _byHostTid.Count; }
    }

    public GuestTask[] Snapshot()
    {
        lock (_lock) return [.. _byHostTid.Values];
    }

    /// <summary>The thread-group leaders: one per live guest process.</summary>
    public GuestTask[] Processes()
    {
        lock (_lock) return [.. _byHostTid.Values.Where(t => t.Started && t.IsThreadGroupLeader)];
    }
}
