namespace UmlMicro.Supervisor.Guest;

/// <summary>
/// The supervisor's copy of the pid grants Sched made: virtual ⇄ host, for every live task and every
/// zombie not yet reaped. It is what keeps a guest pid from ever reaching the host untranslated: a
/// virtual pid that is not here does not exist for the guest.
/// </summary>
internal sealed class PidMap
{
    private readonly Dictionary<int, int> _toHost = new();
    private readonly Dictionary<int, int> _toVirtual = new();
    private readonly object _lock = new();

    public void Add(int vpid, int hostPid)
    {
        lock (_lock)
        {
            _toHost[vpid] = hostPid;
            _toVirtual[hostPid] = vpid;
        }
    }

    public void Remove(int vpid)
    {
        lock (_lock)
        {
            if (_toHost.Remove(vpid, out var host) && _toVirtual.TryGetValue(host, out var v) && v == vpid)
                _toVirtual.Remove(host);
        }
    }

    public bool TryHost(int vpid, out int hostPid)
    {
        lock (_lock) return _toHost.TryGetValue(vpid, out hostPid);
    }

    public bool TryVirtual(int hostPid, out int vpid)
    {
        lock (_lock) return _toVirtual.TryGetValue(hostPid, out vpid);
    }
}
