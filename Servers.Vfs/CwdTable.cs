namespace UmlMicro.Servers.Vfs;

/// <summary>
/// Each guest process's current directory, as a guest path. Processes made with CLONE_FS share one entry, as
/// Linux shares one fs_struct, so a chdir in either moves both.
/// </summary>
internal sealed class CwdTable
{
    private sealed class FsContext(string cwd)
    {
        public string Cwd { get; set; } = cwd;
    }

    private readonly Dictionary<int, FsContext> byPid = new();

    /// <summary>A new namespace: only init exists, in <paramref name="initCwd"/>.</summary>
    public void Reset(int initPid, string initCwd)
    {
        byPid.Clear();
        byPid.Add(initPid, new FsContext(initCwd));
    }

    public bool Contains(int pid) => byPid.ContainsKey(pid);

    public bool TryGet(int pid, out string cwd)
    {
        bool found = byPid.TryGetValue(pid, out var fs);
        cwd = fs?.Cwd ?? "";
        return found;
    }

    public void Fork(int parentPid, int childPid, bool shareFs)
    {
        var parent = byPid[parentPid];
        byPid.Add(childPid, shareFs ? parent : new FsContext(parent.Cwd));
    }

    public void Set(int pid, string cwd) => byPid[pid].Cwd = cwd;

    public void Exit(int pid) => byPid.Remove(pid);
}
