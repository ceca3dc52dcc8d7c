using UmlMicro.Contracts.Linux;
using UmlMicro.Servers.Vfs.Layers;
using UmlMicro.Servers.Vfs.Native;

namespace UmlMicro.Servers.Vfs;

/// <summary>
/// A walked path: <see cref="Node"/> is what it names (missing when only the last component is absent, which a
/// create needs); <see cref="GuestPath"/> is its canonical guest path, symlinks resolved.
/// </summary>
internal readonly record struct Walked(int Errno, string GuestPath, Mount Mount, string Rel, Node Node)
{
    public static Walked Fail(int errno) => new(errno, "", null!, "", default);
}

/// <summary>
/// The VFS's namei: walks a guest path one component at a time through the mounts, following symlinks itself
/// inside the guest's namespace (an absolute target starts again at the guest's root, ".." never climbs above
/// it), so no walk can leave the guest root, whatever the links say. The host is then handed the canonical host
/// path it found. What remains outside this guarantee is the window between this walk and the host's own walk of
/// that path: a guest thread that swaps a directory for a symlink in between can make the host follow it.
/// </summary>
internal sealed class Namei(MountTable mounts)
{
    /// <summary>Linux's MAXSYMLINKS: more links than this in one walk is ELOOP.</summary>
    public const int MaxLinks = 40;

    /// <summary>Walks <paramref name="path"/> from the canonical guest directory <paramref name="start"/> (used for a
    /// relative path). The last component's symlink is followed when <paramref name="followLast"/> (or the path
    /// ends in "/", which asks for a directory).</summary>
    public Walked Walk(string start, string path, bool followLast)
    {
        var cur = new List<string>();
        if (!path.StartsWith('/')) cur.AddRange(start.Split('/', StringSplitOptions.RemoveEmptyEntries));
        var todo = new LinkedList<string>(path.Split('/', StringSplitOptions.RemoveEmptyEntries));
        bool mustBeDir = path.EndsWith('/');
        int links = 0;
        var (mount, rel) = mounts.Find(GuestPath(cur));
        var node = mount.Lookup(rel);
        while (todo.First is { } first)
        {
            string name = first.Value;
            todo.RemoveFirst();
            bool last = todo.Count == 0;
            if (name is "." or "..")
            {
                if (node.Type != NodeType.Directory) return Walked.Fail(Errno.ENOTDIR);
                if (name == ".." && cur.Count > 0) cur.RemoveAt(cur.Count - 1);
                (mount, rel) = mounts.Find(GuestPath(cur));
                node = mount.Lookup(rel);
                if (last) mustBeDir = true;
                continue;
            }
            cur.Add(name);
            string guest = GuestPath(cur);
            var (m, r) = mounts.Find(guest);
            var n = m.Lookup(r);
            if (!n.Exists)
            {
                if (!last) return Walked.Fail(Errno.ENOENT);
                return new Walked(0, guest, m, r, n);
            }
            if (n.Type == NodeType.Symlink && (!last || followLast || mustBeDir))
            {
                if (++links > MaxLinks) return Walked.Fail(Errno.ELOOP);
                cur.RemoveAt(cur.Count - 1);
                if (n.Layer == Layer.Magic && last)
                    return new Walked(0, guest, m, r, n with { Type = NodeType.Special }); // reopens what the fd holds
                if (n.LinkText is not { } target) return Walked.Fail(Errno.ENOTDIR); // a pipe is not a directory
                if (target.Length == 0) return Walked.Fail(Errno.ENOENT);
                if (target.StartsWith('/')) cur.Clear();
                foreach (var t in target.Split('/', StringSplitOptions.RemoveEmptyEntries).Reverse())
                    todo.AddFirst(t);
                if (target.EndsWith('/') && last) mustBeDir = true;
                (mount, rel) = mounts.Find(GuestPath(cur));
                node = mount.Lookup(rel);
                if (todo.Count == 0) return new Walked(0, GuestPath(cur), mount, rel, node); // target "/" or "."
                continue;
            }
            if (!last && n.Type != NodeType.Directory) return Walked.Fail(Errno.ENOTDIR);
            (mount, rel, node) = (m, r, n);
        }
        if (mustBeDir && node.Exists && node.Type != NodeType.Directory) return Walked.Fail(Errno.ENOTDIR);
        return new Walked(0, GuestPath(cur), mount, rel, node);
    }

    private static string GuestPath(List<string> names) => "/" + string.Join('/', names);
}
