namespace UmlMicro.Servers.Vfs;

/// <summary>
/// Each guest process's current directory: its guest path, and the host path the host's cwd was set to (the
/// same string when the directory is the host's own, a snapshot or an upper-layer directory otherwise).
/// Processes made with CLONE_FS share one entry, as Linux shares one fs_struct, so a chdir in either moves both.
/// </summary>
internal sealed class CwdTable
{
    /// <summary>One cwd as a checkpoint keeps it, with every process that shares it.</summary>
    internal sealed record Saved(IReadOnlyList<int> Pids, string Guest, string Host);

    private sealed class FsContext(string guest, string host)
    {
        public string Guest { get; set; } = guest;
        public string Host { get; set; } = host;
    }

    private readonly Dictionary<int, FsContext> byPid = new();

    /// <summary>A new namespace: only init exists.</summary>
    public void Reset(int initPid, string guest, string host)
    {
        byPid.Clear();
        byPid.Add(initPid, new FsContext(guest, host));
    }

    public bool Contains(int pid) => byPid.ContainsKey(pid);

    public bool TryGet(int pid, out string guest, out string host)
    {
        bool found = byPid.TryGetValue(pid, out var fs);
        guest = fs?.Guest ?? "";
        host = fs?.Host ?? "";
        return found;
    }

    public string? GuestOf(int pid) => byPid.TryGetValue(pid, out var fs) ? fs.Guest : null;

    public void Fork(int parentPid, int childPid, bool shareFs)
    {
        var parent = byPid[parentPid];
        byPid.Add(childPid, shareFs ? parent : new FsContext(parent.Guest, parent.Host));
    }

    public void Set(int pid, string guest, string host)
    {
        var fs = byPid[pid];
        fs.Guest = guest;
        fs.Host = host;
    }

    public void Exit(int pid) => byPid.Remove(pid);

    /// <summary>The directory <paramref name="from"/> is now <paramref name="to"/> (and, for an exchange, the other way
    /// round): every cwd in or under it has its new guest path. The host's cwd followed the directory by itself.</summary>
    public void Renamed(string from, string to, bool exchange)
    {
        foreach (var fs in byPid.Values.Distinct())
        {
            if (Moved(fs.Guest, from, to) is { } moved) fs.Guest = moved;
            else if (exchange && Moved(fs.Guest, to, from) is { } back) fs.Guest = back;
        }
    }

    private static string? Moved(string path, string from, string to) =>
        path == from ? to
        : path.StartsWith(from + "/", StringComparison.Ordinal) ? to + path[from.Length..]
        : null;

    public IReadOnlyList<Saved> Save() => [.. byPid.GroupBy(kv => kv.Value)
        .Select(g => new Saved([.. g.Select(kv => kv.Key).Order()], g.Key.Guest, g.Key.Host))];

    public void Load(IEnumerable<Saved> saved)
    {
        byPid.Clear();
        foreach (var cwd in saved)
        {
            var fs = new FsContext(cwd.Guest ?? "/", cwd.Host ?? "/");
            foreach (int pid in cwd.Pids ?? []) byPid.Add(pid, fs);
        }
    }
}
