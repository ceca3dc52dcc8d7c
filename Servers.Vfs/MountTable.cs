using UmlMicro.Servers.Vfs.Layers;

namespace UmlMicro.Servers.Vfs;

/// <summary>The guest's mounts: which filesystem serves a guest path, and which guest path a host path is.</summary>
internal sealed class MountTable
{
    private readonly List<Mount> _mounts = new();
    private readonly Dictionary<string, Mount> _points = new(StringComparer.Ordinal);

    public IReadOnlyList<Mount> All => _mounts;

    public void Add(Mount mount)
    {
        if (_mounts.Count == 0 && mount.GuestPoint != "/") throw new InvalidOperationException("the first mount is the root");
        _mounts.RemoveAll(m => m.GuestPoint == mount.GuestPoint);
        _mounts.Add(mount);
        _points[mount.GuestPoint] = mount;
    }

    public bool IsMountPoint(string guestPath) => _points.ContainsKey(guestPath);

    /// <summary>The mount whose root is <paramref name="guestPath"/>, or null. A walk that goes down by one name
    /// needs only this: the name is either a mount point or in the same mount as its directory.</summary>
    public Mount? At(string guestPath) => _points.GetValueOrDefault(guestPath);

    /// <summary>The mount that serves <paramref name="guestPath"/> (absolute, canonical) and the path inside it.</summary>
    public (Mount Mount, string Rel) Find(string guestPath)
    {
        Mount best = _mounts[0];
        foreach (var m in _mounts)
            if (m.GuestPoint.Length > best.GuestPoint.Length && Covers(m.GuestPoint, guestPath)) best = m;
        string rel = best.GuestPoint == "/" ? guestPath.TrimStart('/') : guestPath.Length == best.GuestPoint.Length ? "" : guestPath[(best.GuestPoint.Length + 1)..];
        return (best, rel);
    }

    /// <summary>The mount points directly under <paramref name="guestDir"/> (they belong in its listing).</summary>
    public IEnumerable<string> ChildMountNames(string guestDir) =>
        _mounts.Select(m => m.GuestPoint)
            .Where(p => p != "/" && Mount.Parent(p.TrimStart('/')) == guestDir.TrimStart('/'))
            .Select(p => Mount.NameOf(p));

    /// <summary>The guest path of a host path, from the mount that holds it most specifically; null when none does.</summary>
    public string? GuestPathOf(string hostPath)
    {
        string? best = null;
        int bestPrefix = -1;
        foreach (var m in _mounts)
        {
            if (m.RelOf(hostPath) is not { } rel) continue;
            int prefix = hostPath.Length - rel.Length;
            if (prefix < bestPrefix) continue;
            bestPrefix = prefix;
            best = Mount.Join(m.GuestPoint, rel);
        }
        return best;
    }

    private static bool Covers(string point, string path) =>
        point == "/" || path == point || (path.StartsWith(point, StringComparison.Ordinal) && path.Length > point.Length && path[point.Length] == '/');
}
