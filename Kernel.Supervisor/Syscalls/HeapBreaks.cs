namespace UmlMicro.Supervisor.Syscalls;

/// <summary>
/// The break of each process, as MM granted it at the exec (mm/space_exec) and as brk calls moved it since: brk(0),
/// the query every libc makes at its start, is answered from it without a round trip, and the commit budget knows
/// from it what a growth commits. A process that shares its space with another (CLONE_VM: vfork, posix_spawn) shares
/// its break, which the other may move: until its next exec it asks MM.
/// </summary>
internal sealed class HeapBreaks
{
    private readonly Lock _gate = new();
    private readonly Dictionary<int, ulong> _breaks = new();
    private readonly HashSet<int> _sharing = new();

    public bool TryGet(int vpid, out ulong brk)
    {
        lock (_gate) return _breaks.TryGetValue(vpid, out brk);
    }

    /// <summary>The break of process <paramref name="vpid"/> is <paramref name="brk"/> now.</summary>
    public void Set(int vpid, ulong brk)
    {
        lock (_gate)
        {
            if (!_sharing.Contains(vpid)) _breaks[vpid] = brk;
        }
    }

    /// <summary>Process <paramref name="child"/> was made by <paramref name="parent"/>, with a copy of its space (and
    /// its break) or the same space (<paramref name="sharedSpace"/>).</summary>
    public void Created(int parent, int child, bool sharedSpace)
    {
        lock (_gate)
        {
            if (sharedSpace)
            {
                _sharing.Add(parent);
                _sharing.Add(child);
                _breaks.Remove(parent);
            }
            else if (_breaks.TryGetValue(parent, out ulong brk))
            {
                _breaks[child] = brk;
            }
        }
    }

    /// <summary>The process exec'd (a space of its own: <paramref name="brk"/> is its break).</summary>
    public void Execed(int vpid, ulong brk)
    {
        lock (_gate)
        {
            _sharing.Remove(vpid);
            _breaks[vpid] = brk;
        }
    }

    /// <summary>The process exited.</summary>
    public void Forget(int vpid)
    {
        lock (_gate)
        {
            _sharing.Remove(vpid);
            _breaks.Remove(vpid);
        }
    }
}
