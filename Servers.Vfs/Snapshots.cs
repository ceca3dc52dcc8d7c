using UmlMicro.Servers.Vfs.Layers;
using UmlMicro.Servers.Vfs.Native;

namespace UmlMicro.Servers.Vfs;

/// <summary>
/// Directories whose host listing is not the guest's (merged layers, hidden names, made-up procfs and devfs
/// directories) are handed to the host as snapshots: a private host directory holding one placeholder per guest
/// name (a directory for a directory, the same link for a symlink, an empty file otherwise), with the real
/// directory's mode, owner and times. getdents64, fstat and fchdir then work natively on the guest's fd; any path
/// the guest names through it comes back to the VFS and resolves to the real node. A snapshot is reused until
/// the directory's listing changes; an older one stays (a process may still be reading it) until the state
/// directory goes with the guest.
/// </summary>
internal sealed class Snapshots
{
    private readonly Dictionary<(Mount, string), (long Generation, string Host)> _cache = new();
    private readonly Dictionary<string, string> _guestOf = new(StringComparer.Ordinal);
    private readonly MadeObjects _made;

    /// <summary>Snapshots kept in <paramref name="dir"/>; those an earlier server made there are known again (a restart).</summary>
    public Snapshots(string dir)
    {
        _made = new MadeObjects(dir);
        foreach (var (host, guest) in _made.Recall())
            if (guest is not null) _guestOf[host] = guest;
    }

    /// <summary>The snapshot of the directory <paramref name="rel"/>: the last one while its generation is the same,
    /// else a new one of the names <paramref name="list"/> gives.</summary>
    public string For(Mount mount, string rel, string guestPath, Node node, Func<IEnumerable<DirEntry>> list)
    {
        long generation = mount.Generation(rel);
        if (generation >= 0 && _cache.TryGetValue((mount, rel), out var hit) && hit.Generation == generation && Directory.Exists(hit.Host))
            return hit.Host;
        string host = _made.New("", guestPath);
        Directory.CreateDirectory(host);
        foreach (var e in list())
        {
            string p = Path.Combine(host, e.Name);
            switch (e.Type)
            {
                case NodeType.Directory: HostFs.Mkdir(p, 0x1ED); break;
                case NodeType.Symlink: HostFs.Symlink(e.LinkText ?? "", p); break;
                default: HostFs.CreateEmpty(p); break;
            }
        }
        if (mount.AttributesOf(rel, node) is { } attrs && HostFs.Lstat(attrs) is { Type: NodeType.Directory } st)
        {
            HostFs.Lchown(host, st.Uid, st.Gid);
            HostFs.Chmod(host, st.Mode);
            HostFs.CopyTimes(host, st);
        }
        if (generation >= 0) _cache[(mount, rel)] = (generation, host);
        _guestOf[host] = guestPath;
        return host;
    }

    /// <summary>The guest path of a snapshot or a placeholder in one, or null.</summary>
    public string? GuestPathOf(string hostPath)
    {
        if (_guestOf.TryGetValue(hostPath, out var g)) return g;
        int slash = hostPath.LastIndexOf('/');
        if (slash > 0 && _guestOf.TryGetValue(hostPath[..slash], out var parent)) return Mount.Join(parent, hostPath[(slash + 1)..].TrimStart('/'));
        return null;
    }
}
