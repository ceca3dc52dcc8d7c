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
/// <para>
/// Every path a guest names comes through here, so the walk asks each mount only what it must: a directory it
/// stands in is looked up only when something depends on it ("." and ".." need it to be a directory, a walk that
/// ends there returns it), and each name is looked up knowing the directory just found above it, which spares a
/// layered mount the probe of a layer that directory is not in. Nothing is kept from one walk to the next: the
/// host's tree under the mounts changes without telling the VFS.
/// </para>
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
        var at = new Cursor(mounts, path.StartsWith('/') ? "/" : start);
        // The names still to walk, the next on top: a symlink's target goes on top of what follows it.
        var todo = new Stack<string>();
        PushNames(todo, path);
        bool mustBeDir = path.EndsWith('/');
        int links = 0;
        while (todo.TryPop(out var name))
        {
            bool last = todo.Count == 0;
            if (name is "." or "..")
            {
                if (at.Node.Type != NodeType.Directory) return Walked.Fail(Errno.ENOTDIR);
                if (name == "..") at.Up();
                if (last) mustBeDir = true;
                continue;
            }
            var (guest, m, r, n) = at.Child(name);
            if (!n.Exists)
            {
                if (!last) return Walked.Fail(Errno.ENOENT);
                return new Walked(0, guest, m, r, n);
            }
            if (n.Type == NodeType.Symlink && (!last || followLast || mustBeDir))
            {
                if (++links > MaxLinks) return Walked.Fail(Errno.ELOOP);
                if (n.Layer == Layer.Magic && last)
                    return new Walked(0, guest, m, r, n with { Type = NodeType.Special }); // reopens what the fd holds
                if (n.LinkText is not { } target) return Walked.Fail(Errno.ENOTDIR); // a pipe is not a directory
                if (target.Length == 0) return Walked.Fail(Errno.ENOENT);
                if (target.StartsWith('/')) at.ToRoot();
                PushNames(todo, target);
                if (target.EndsWith('/') && last) mustBeDir = true;
                if (todo.Count == 0) return at.Walked(); // target "/" or "."
                continue;
            }
            if (!last && n.Type != NodeType.Directory) return Walked.Fail(Errno.ENOTDIR);
            at.Enter(guest, m, r, n);
        }
        if (mustBeDir && at.Node.Exists && at.Node.Type != NodeType.Directory) return Walked.Fail(Errno.ENOTDIR);
        return at.Walked();
    }

    private static void PushNames(Stack<string> todo, string path)
    {
        var names = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        for (int i = names.Length - 1; i >= 0; i--) todo.Push(names[i]);
    }

    /// <summary>
    /// The directory a walk stands in: the guest paths of it and of every directory above it (so ".." needs no
    /// string work), the mount that serves it and the path inside that mount, and its node once something needed
    /// it.
    /// </summary>
    private struct Cursor
    {
        private readonly MountTable _mounts;
        private readonly List<string> _guests = new();
        private Mount _mount;
        private string _rel;
        private Node _node;
        private bool _looked;

        public Cursor(MountTable mounts, string start)
        {
            _mounts = mounts;
            _guests.Add("/");
            foreach (var name in start.Split('/', StringSplitOptions.RemoveEmptyEntries))
                _guests.Add(Mount.Join(_guests[^1], name));
            (_mount, _rel) = mounts.Find(_guests[^1]);
            _node = default;
            _looked = false;
        }

        public Node Node
        {
            get
            {
                if (!_looked)
                {
                    _node = _mount.Lookup(_rel);
                    _looked = true;
                }
                return _node;
            }
        }

        /// <summary>What <paramref name="name"/> in this directory is. A name that is a mount point is that mount's
        /// root; any other stays in this directory's mount, looked up below this directory's node if it is known.</summary>
        public (string Guest, Mount Mount, string Rel, Node Node) Child(string name)
        {
            string guest = Mount.Join(_guests[^1], name);
            if (_mounts.At(guest) is { } point) return (guest, point, "", point.Lookup(""));
            string rel = Mount.Child(_rel, name);
            var node = _looked && _node.Type == NodeType.Directory ? _mount.Lookup(rel, _node) : _mount.Lookup(rel);
            return (guest, _mount, rel, node);
        }

        public void Enter(string guest, Mount mount, string rel, Node node)
        {
            _guests.Add(guest);
            (_mount, _rel, _node, _looked) = (mount, rel, node, true);
        }

        /// <summary>"..": the parent directory, or the root itself at the root.</summary>
        public void Up()
        {
            if (_guests.Count > 1) _guests.RemoveAt(_guests.Count - 1);
            Moved();
        }

        public void ToRoot()
        {
            _guests.RemoveRange(1, _guests.Count - 1);
            Moved();
        }

        public Walked Walked() => new(0, _guests[^1], _mount, _rel, Node);

        private void Moved()
        {
            (_mount, _rel) = _mounts.Find(_guests[^1]);
            _looked = false;
        }
    }
}
