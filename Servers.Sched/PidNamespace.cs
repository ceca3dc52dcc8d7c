namespace UmlMicro.Servers.Sched;

/// <summary>
/// The numbers of the guest's pid namespace, allocated as Linux's kernel/pid.c does. One number space serves
/// thread ids, process ids, process group ids and session ids, and a number stays taken while anything still
/// names it (a live thread, a zombie, a group or session that outlived its leader), like a struct pid that is
/// freed only with its last reference. New numbers are handed out cyclically, increasing from the last one
/// given and wrapping at pid_max, so a pid that was just freed is not reused soon.
/// </summary>
internal sealed class PidNamespace
{
    /// <summary>PID_MAX_LIMIT of a 64-bit kernel: numbers stay below it.</summary>
    public const int DefaultPidMax = 4 * 1024 * 1024;

    /// <summary>RESERVED_PIDS: once the cursor has passed it, a wrap restarts here, leaving the low
    /// numbers to the daemons that were started first.</summary>
    public const int DefaultReserved = 300;

    private readonly Dictionary<int, int> references = new();
    private readonly int pidMax, reserved;
    private int last;

    public PidNamespace(int pidMax = DefaultPidMax, int reserved = DefaultReserved)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(pidMax, 2);
        ArgumentOutOfRangeException.ThrowIfLessThan(reserved, 1);
        this.pidMax = pidMax;
        this.reserved = reserved;
    }

    /// <summary>Whether any number has ever been handed out.</summary>
    public bool Started => last != 0;

    public bool IsTaken(int nr) => references.ContainsKey(nr);

    /// <summary>Takes the next free number, holding one reference to it; 0 when every number is taken
    /// (where fork fails with EAGAIN).</summary>
    public int Alloc()
    {
        // As idr_alloc_cyclic in alloc_pid: search [cursor, pid_max), then wrap to [min, cursor).
        int min = last + 1 > reserved && reserved < pidMax ? reserved : 1;
        int cursor = Math.Max(last + 1, min);
        for (int nr = cursor; nr < pidMax; nr++)
        {
            if (!references.ContainsKey(nr))
                return Take(nr);
        }
        for (int nr = min; nr < cursor; nr++)
        {
            if (!references.ContainsKey(nr))
                return Take(nr);
        }
        return 0;
    }

    /// <summary>Takes <paramref name="nr"/> if it is free and in range (the number the host's pid namespace gave a new
    /// task), as alloc_pid does for clone3's set_tid; false when it is not.</summary>
    public bool TryTake(int nr)
    {
        if (nr < 1 || nr >= pidMax || references.ContainsKey(nr)) return false;
        Take(nr);
        return true;
    }

    /// <summary>One more holder of a number that is already taken (a process joining a group or session).</summary>
    public void Get(int nr)
    {
        if (!references.TryGetValue(nr, out int count))
            throw new InvalidOperationException($"pid {nr} is not in use");
        references[nr] = count + 1;
    }

    /// <summary>Drops one reference; the number is free again when none is left.</summary>
    public void Put(int nr)
    {
        if (!references.TryGetValue(nr, out int count))
            throw new InvalidOperationException($"pid {nr} is not in use");
        if (count == 1)
            references.Remove(nr);
        else
            references[nr] = count - 1;
    }

    /// <summary>All a checkpoint needs: the last number handed out and every number in use with its references.</summary>
    public (int Last, Dictionary<int, int> References) Save() => (last, new Dictionary<int, int>(references));

    public void Load(int lastTaken, IReadOnlyDictionary<int, int> inUse)
    {
        if (inUse.Any(kv => kv.Key < 1 || kv.Key >= pidMax || kv.Value < 1) || lastTaken < 0 || lastTaken >= pidMax)
            throw new ArgumentException("pid numbers out of range");
        references.Clear();
        foreach (var (nr, count) in inUse) references.Add(nr, count);
        last = lastTaken;
    }

    private int Take(int nr)
    {
        references.Add(nr, 1);
        last = nr;
        return nr;
    }
}
