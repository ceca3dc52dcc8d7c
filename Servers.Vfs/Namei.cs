using UmlMicro.Contracts.Linux;
using UmlMicro.Contracts.Servers;
using UmlMicro.Servers.Vfs.Layers;
using UmlMicro.Servers.Vfs.Native;

namespace UmlMicro.Servers.Vfs;

/// <summary>
/// A walked path: <see cref="Node"/> is what it names (missing when only the last component is absent, which a
/// create needs); <see cref="GuestPath"/> is its canonical guest path, symlinks resolved. <see cref="Stable"/>: every
/// name on the way was in a cacheable mount, so the same string walks the same way whichever process asks with the
/// same credentials (not so through
/// /proc/self or /proc/PID/cwd).
/// </summary>
/// <see cref="Dir"/> is the directory the last name was looked up in (where a create makes it), when the walk ended with
/// a lookup of a name.
internal readonly record struct Walked(int Errno, string GuestPath, Mount Mount, string Rel, Node Node, bool Stable = false, Node Dir = default)
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
/// layered mount the probe of a layer that directory is not in.
/// </para>
/// <para>
/// The directory cache: a walk that ends in a directory, and the directory a walk's last name was looked up in, are
/// kept by their canonical guest paths, so that the next walk of a path below one of them starts there and costs one
/// name instead of the whole path (a shell's cd hands chdir the whole path, one level deeper each time). Only
/// directories of mounts whose names change through the guest's own calls are kept (<see cref="Mount.Cacheable"/>);
/// the VFS forgets them all at every change of its namespace, as it revokes its leases, and each for itself after
/// <see cref="Lifetime"/>, the time within which a change the host makes behind the guest's back (a bind mount the
/// host also writes) may go unseen, as FUSE's entry timeout allows.
/// </para>
/// <para>
/// Permissions: a walk made for a guest (with its <see cref="Credentials"/>) checks search permission on every
/// directory it looks a name up in, "." and ".." included, as Linux's link_path_walk does (may_lookup), in mounts
/// whose nodes have host attributes. A kept directory is reused only by a walk with the same credentials as the one
/// that kept it: that walk searched every directory above it. The VFS forgets kept directories when attributes change
/// (vfs/attributes_changed) as when names do.
/// </para>
/// </summary>
/// <summary>openat2's resolve flags for one walk, and the directory RESOLVE_BENEATH and RESOLVE_IN_ROOT keep it in.</summary>
internal readonly record struct Scope(int Flags, string Root)
{
    public bool Beneath => (Flags & LinuxFlags.RESOLVE_BENEATH) != 0;
    public bool InRoot => (Flags & LinuxFlags.RESOLVE_IN_ROOT) != 0;
    public bool Scoped => Beneath || InRoot;
    public bool NoSymlinks => (Flags & LinuxFlags.RESOLVE_NO_SYMLINKS) != 0;
    public bool NoMagicLinks => (Flags & (LinuxFlags.RESOLVE_NO_MAGICLINKS | LinuxFlags.RESOLVE_NO_SYMLINKS)) != 0;
    public bool NoXdev => (Flags & LinuxFlags.RESOLVE_NO_XDEV) != 0;
    public bool Cached => (Flags & LinuxFlags.RESOLVE_CACHED) != 0;
    /// <summary>Any flag changes the walk (RESOLVE_CACHED only where Linux's cached walk cannot go: magic links).</summary>
    public bool Restricts => Flags != 0;
}

internal sealed class Namei(MountTable mounts, Permissions? permissions = null)
{
    /// <summary>Linux's MAXSYMLINKS: more links than this in one walk is ELOOP.</summary>
    public const int MaxLinks = 40;

    /// <summary>How long a kept directory (and a lease) may be used: FUSE's default entry timeout.</summary>
    public static readonly TimeSpan Lifetime = TimeSpan.FromSeconds(1);

    private const int MaxKept = 4096;

    /// <summary>A directory a walk stood in, as the walk's cursor held it.</summary>
    private readonly record struct Kept(Mount Mount, string Rel, Node Node, bool Looked, long Born, Credentials? By);

    private readonly Permissions _permissions = permissions ?? new Permissions();

    private readonly Dictionary<string, Kept> _dirs = new(StringComparer.Ordinal);

    /// <summary>Every kept directory is forgotten: the namespace is about to change.</summary>
    public void Forget() => _dirs.Clear();

    /// <summary>Walks <paramref name="path"/> from the canonical guest directory <paramref name="start"/> (used for a
    /// relative path). The last component's symlink is followed when <paramref name="followLast"/> (or the path
    /// ends in "/", which asks for a directory).</summary>
    /// <param name="creds">Who walks: search permission is checked on every directory on the way (null: the kernel's
    /// own walk, unchecked).</param>
    /// <param name="scope">openat2's resolve flags (default: none), as Linux's path walk keeps them: a symlink (NO_SYMLINKS)
    /// or magic link (NO_MAGICLINKS) to follow is ELOOP; a mount crossed is EXDEV (NO_XDEV); under BENEATH an absolute
    /// path or link, a ".." above the scope's root or a magic link is EXDEV; under IN_ROOT they start again at, or stop
    /// at, the scope's root (a magic link is EXDEV).</param>
    public Walked Walk(string start, string path, bool followLast, Credentials? creds = null, Scope scope = default)
    {
        // The names still to walk, the next on top: a symlink's target goes on top of what follows it.
        var todo = new Stack<string>();
        bool restricted = scope.Restricts;
        if (restricted && path.StartsWith('/') && scope.Beneath) return Walked.Fail(Errno.EXDEV);
        var at = (restricted ? null : FromKept(start, path, todo, creds))
            ?? new Cursor(mounts, !path.StartsWith('/') ? start : scope.InRoot ? scope.Root : "/");
        if (todo.Count == 0) PushNames(todo, path);
        bool mustBeDir = path.EndsWith('/');
        bool stable = at.Mount.Cacheable;
        var mount = at.Mount; // NO_XDEV: the walk must stay in it
        int links = 0;
        Node dir = default;
        while (todo.TryPop(out var name))
        {
            bool last = todo.Count == 0;
            if (creds is not null && at.Mount.ChecksPermissions && _permissions.Search(creds, at.Node) is var denied and not 0)
                return Walked.Fail(denied);
            if (name is "." or "..")
            {
                if (at.Node.Type != NodeType.Directory) return Walked.Fail(Errno.ENOTDIR);
                if (name == ".." && !(scope.Scoped && at.Guest == scope.Root)) at.Up();
                else if (name == ".." && scope.Beneath) return Walked.Fail(Errno.EXDEV); // IN_ROOT: ".." of the root is the root
                if (last) mustBeDir = true;
                if (scope.NoXdev && at.Mount != mount) return Walked.Fail(Errno.EXDEV);
                continue;
            }
            if (last) Keep(at, creds);
            dir = at.Looked ? at.Node : default;
            var (guest, m, r, n) = at.Child(name);
            stable &= m.Cacheable;
            if (scope.NoXdev && m != mount) return Walked.Fail(Errno.EXDEV);
            if (!n.Exists)
            {
                if (!last) return Walked.Fail(Errno.ENOENT);
                return new Walked(0, guest, m, r, n, stable, dir);
            }
            if (n.Type == NodeType.Symlink && (!last || followLast || mustBeDir))
            {
                if (scope.NoSymlinks) return Walked.Fail(Errno.ELOOP);
                if (++links > MaxLinks) return Walked.Fail(Errno.ELOOP);
                if (n.IsMagicLink)
                {
                    // Linux leaves its cached (RCU) walk for one (RESOLVE_CACHED: EAGAIN), then nd_jump_link refuses it under
                    // NO_MAGICLINKS, and under a scoped walk (it could lead anywhere).
                    if (scope.Cached) return Walked.Fail(Errno.EAGAIN);
                    if (scope.NoMagicLinks) return Walked.Fail(Errno.ELOOP);
                    if (scope.Scoped) return Walked.Fail(Errno.EXDEV);
                    if (last && n.Layer == Layer.Magic)
                        return new Walked(0, guest, m, r, n with { Type = NodeType.Special }, Dir: dir); // reopens what the fd holds
                }
                if (n.LinkText is not { } target) return Walked.Fail(Errno.ENOTDIR); // a pipe is not a directory
                if (target.Length == 0) return Walked.Fail(Errno.ENOENT);
                if (target.StartsWith('/'))
                {
                    if (scope.Beneath) return Walked.Fail(Errno.EXDEV);
                    if (scope.InRoot) at = new Cursor(mounts, scope.Root);
                    else at.ToRoot();
                    if (scope.NoXdev && at.Mount != mount) return Walked.Fail(Errno.EXDEV);
                }
                PushNames(todo, target);
                if (target.EndsWith('/') && last) mustBeDir = true;
                if (todo.Count == 0) return at.Walked() with { Stable = stable, Dir = default }; // target "/" or "."
                continue;
            }
            if (!last && n.Type != NodeType.Directory) return Walked.Fail(Errno.ENOTDIR);
            at.Enter(guest, m, r, n);
        }
        if (mustBeDir && at.Node.Exists && at.Node.Type != NodeType.Directory) return Walked.Fail(Errno.ENOTDIR);
        var walked = at.Walked() with { Stable = stable && at.Mount.Cacheable, Dir = dir };
        if (walked.Node.Type == NodeType.Directory) Keep(at, creds);
        return walked;
    }

    /// <summary>Looks up <paramref name="name"/> (a plain name) in the walked directory <paramref name="dir"/>, without
    /// following it: the last step of a walk to a parent (Linux's lookup after filename_parentat).</summary>
    public Walked Child(in Walked dir, string name)
    {
        var at = new Cursor(mounts, dir.GuestPath, new Kept(dir.Mount, dir.Rel, dir.Node, true, 0, null));
        var (guest, m, r, n) = at.Child(name);
        return new Walked(0, guest, m, r, n, dir.Stable && m.Cacheable, dir.Node);
    }

    /// <summary>
    /// A cursor in the kept directory that holds the last name of <paramref name="path"/> (walked from
    /// <paramref name="start"/>), with that name pushed on <paramref name="todo"/>; null when there is none. Only a path
    /// whose names before the last are plain (no "", "." or "..") can be looked up: its prefix is then a canonical
    /// guest path exactly when the walk would have found it so.
    /// </summary>
    private Cursor? FromKept(string start, string path, Stack<string> todo, Credentials? creds)
    {
        if (_dirs.Count == 0) return null;
        int slash = path.LastIndexOf('/');
        string name = path[(slash + 1)..];
        if (name is "" or "." or "..") return null;
        string dir = slash < 0 ? start : slash == 0 ? "/" : path.StartsWith('/') ? path[..slash] : Mount.Join(start, path[..slash]);
        if (slash > 0 && !IsPlain(path.AsSpan(0, slash))) return null;
        if (!_dirs.TryGetValue(dir, out var kept) || !Equals(kept.By, creds)) return null;
        if (System.Diagnostics.Stopwatch.GetElapsedTime(kept.Born) > Lifetime)
        {
            _dirs.Remove(dir);
            return null;
        }
        todo.Push(name);
        return new Cursor(mounts, dir, kept);
    }

    private static bool IsPlain(ReadOnlySpan<char> names)
    {
        foreach (var range in names.Split('/'))
        {
            var n = names[range];
            if (range.Start.Value == 0 && n.Length == 0) continue; // the root of an absolute path
            if (n.Length == 0 || n is "." or "..") return false;
        }
        return true;
    }

    private void Keep(in Cursor at, Credentials? creds)
    {
        if (!at.Mount.Cacheable || (at.Looked && at.Node.Type != NodeType.Directory)) return;
        if (_dirs.Count >= MaxKept) _dirs.Clear();
        _dirs[at.Guest] = new Kept(at.Mount, at.Rel, at.Looked ? at.Node : default, at.Looked, System.Diagnostics.Stopwatch.GetTimestamp(), creds);
    }

    private static void PushNames(Stack<string> todo, string path)
    {
        var names = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        for (int i = names.Length - 1; i >= 0; i--) todo.Push(names[i]);
    }

    /// <summary>
    /// The directory a walk stands in: its canonical guest path (".." is its parent, by the string), the mount that
    /// serves it and the path inside that mount, and its node once something needed it.
    /// </summary>
    private struct Cursor
    {
        private readonly MountTable _mounts;
        private string _guest;
        private Mount _mount;
        private string _rel;
        private Node _node;
        private bool _looked;

        public Cursor(MountTable mounts, string start)
        {
            _mounts = mounts;
            _guest = start.Length == 0 ? "/" : start;
            (_mount, _rel) = mounts.Find(_guest);
            _node = default;
            _looked = false;
        }

        public Cursor(MountTable mounts, string guest, Kept kept)
        {
            _mounts = mounts;
            _guest = guest;
            (_mount, _rel, _node, _looked) = (kept.Mount, kept.Rel, kept.Node, kept.Looked);
        }

        public readonly string Guest => _guest;
        public readonly Mount Mount => _mount;
        public readonly string Rel => _rel;
        public readonly bool Looked => _looked;

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
        public readonly (string Guest, Mount Mount, string Rel, Node Node) Child(string name)
        {
            string guest = Mount.Join(_guest, name);
            if (_mounts.At(guest) is { } point) return (guest, point, "", point.Lookup(""));
            string rel = Mount.Child(_rel, name);
            var node = _looked && _node.Type == NodeType.Directory ? _mount.Lookup(rel, _node) : _mount.Lookup(rel);
            return (guest, _mount, rel, node);
        }

        public void Enter(string guest, Mount mount, string rel, Node node) =>
            (_guest, _mount, _rel, _node, _looked) = (guest, mount, rel, node, true);

        /// <summary>"..": the parent directory, or the root itself at the root.</summary>
        public void Up()
        {
            _guest = _guest.LastIndexOf('/') is var i and > 0 ? _guest[..i] : "/";
            Moved();
        }

        public void ToRoot()
        {
            _guest = "/";
            Moved();
        }

        public Walked Walked() => new(0, _guest, _mount, _rel, Node);

        private void Moved()
        {
            (_mount, _rel) = _mounts.Find(_guest);
            _looked = false;
        }
    }
}
