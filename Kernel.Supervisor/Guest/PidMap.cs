namespace UmlMicro.Supervisor.Guest;

/// <summary>
/// The supervisor's copy of the pid grants Sched made, for every live task and every zombie not yet reaped: each
/// virtual pid with the task's host pid (what the supervisor itself uses) and its pid in the guest's pid namespace
/// (what the host kernel reads and writes in the guest's own calls; the host pid when the guest has no namespace).
/// It is what keeps a guest pid from ever reaching the host untranslated: a virtual pid that is not here does not
/// exist for the guest.
/// </summary>
internal sealed class PidMap
{
    private readonly Dictionary<int, (int Host, int Ns)> _byVirtual = new();
    private readonly Dictionary<int, int> _hostToVirtual = new();
    private readonly Dictionary<int, int> _nsToVirtual = new();
    private readonly object _lock = new();

    public void Add(int vpid, int hostPid, int nsPid)
    {
        lock (_lock)
        {
            _byVirtual[vpid] = (hostPid, nsPid);
            _hostToVirtual[hostPid] = vpid;
            _nsToVirtual[nsPid] = vpid;
        }
    }

    public void Remove(int vpid)
    {
        lock (_lock)
        {
            if (!_byVirtual.Remove(vpid, out var pids)) return;
            if (_hostToVirtual.TryGetValue(pids.Host, out var v) && v == vpid) _hostToVirtual.Remove(pids.Host);
            if (_nsToVirtual.TryGetValue(pids.Ns, out v) && v == vpid) _nsToVirtual.Remove(pids.Ns);
        }
    }

    public bool TryHost(int vpid, out int hostPid)
    {
        lock (_lock)
        {
            bool found = _byVirtual.TryGetValue(vpid, out var pids);
            hostPid = pids.Host;
            return found;
        }
    }

    /// <summary>The pid of guest task <paramref name="vpid"/> as the guest's own calls name it to the host.</summary>
    public bool TryNs(int vpid, out int nsPid)
    {
        lock (_lock)
        {
            bool found = _byVirtual.TryGetValue(vpid, out var pids);
            nsPid = pids.Ns;
            return found;
        }
    }

    public bool TryVirtual(int hostPid, out int vpid)
    {
        lock (_lock) return _hostToVirtual.TryGetValue(hostPid, out vpid);
    }

    /// <summary>The guest pid of the task the host names <paramref name="nsPid"/> in what it hands the guest.</summary>
    public bool TryVirtualOfNs(int nsPid, out int vpid)
    {
        lock (_lock) return _nsToVirtual.TryGetValue(nsPid, out vpid);
    }
}
