using UmlMicro.Contracts.Linux;
using UmlMicro.Servers.Vfs.Native;

namespace UmlMicro.Servers.Vfs.Layers;

/// <summary>Where a node lives: a host tree used as it is, the copy-on-write layer or the read-only layer under it,
/// something the VFS makes up (procfs, devfs), or a host "magic link" (/proc/PID/fd/N of a pipe) that can only be
/// opened, never walked through.</summary>
internal enum Layer
{
    Host,
    Upper,
    Lower,
    Synthetic,
    Magic,
}

/// <summary>
/// What one guest name resolves to inside a mount. <paramref name="HostPath"/> is the host object behind it (null
/// for a synthetic node until it is materialised); <paramref name="LinkText"/> a symlink's target as the guest reads
/// it; <paramref name="NeedsMerge"/> a directory whose host listing is not the guest's (layers to merge, hidden or
/// whited-out names, or made up), so opening or stat-ing it goes through a snapshot. <paramref name="Mode"/>,
/// <paramref name="Uid"/> and <paramref name="Gid"/> are the host object's, as the walk's lstat found them (what the
/// permission checks decide by); Mode is 0 for a node without a host object of its own (procfs, devfs).
/// <paramref name="Jumps"/>: a procfs link that jumps to an object rather than names a path (Linux's proc_pid_get_link:
/// /proc/PID/{exe,cwd,root}), a magic link as /proc/PID/fd/N (<see cref="Layer.Magic"/>) is, for openat2's resolve flags.
/// </summary>
internal readonly record struct Node(NodeType Type, string? HostPath, Layer Layer, string? LinkText = null, bool NeedsMerge = false,
    uint Mode = 0, uint Uid = 0, uint Gid = 0, bool Jumps = false)
{
    public bool Exists => Type != NodeType.None;

    /// <summary>A magic link: refused by RESOLVE_NO_MAGICLINKS, and by a walk scoped with BENEATH or IN_ROOT.</summary>
    public bool IsMagicLink => Type == NodeType.Symlink && (Layer == Layer.Magic || Jumps);
    public static Node Missing(string? hostPath, Layer layer) => new(NodeType.None, hostPath, layer);
}

/// <summary>One name in a directory listing, with what a placeholder in a snapshot must be.</summary>
internal readonly record struct DirEntry(string Name, NodeType Type, string? LinkText = null);

/// <summary>
/// A filesystem mounted at <see cref="GuestPoint"/>. Names inside it are "rel" paths: canonical (symlinks already
/// resolved by the walk), relative to the mount's root, "" for the root itself. The walk (Namei) asks one
/// component at a time; changes come as whole operations so that a layered mount can keep its layers in step.
/// Every change answers 0 or the errno Linux gives.
/// </summary>
internal abstract class Mount(string guestPoint, bool readOnly)
{
    public string GuestPoint { get; } = guestPoint;
    public bool ReadOnly { get; } = readOnly;

    /// <summary>The filesystem type /proc/mounts shows.</summary>
    public abstract string FsType { get; }

    /// <summary>The source /proc/mounts shows.</summary>
    public virtual string Source => FsType;

    public abstract Node Lookup(string rel);

    /// <summary>
    /// Looks up <paramref name="rel"/>, a name in the directory <paramref name="parent"/> that the same walk has
    /// just found in this mount (at <c>Parent(rel)</c>). The answer must be the one <see cref="Lookup(string)"/>
    /// gives; a layered mount uses the parent to skip probing a layer that cannot hold the name.
    /// </summary>
    public virtual Node Lookup(string rel, in Node parent) => Lookup(rel);

    /// <summary>The guest's listing of a directory that <see cref="Node.NeedsMerge"/>.</summary>
    public abstract IEnumerable<DirEntry> List(string rel);

    /// <summary>Bumped whenever the listing of <paramref name="rel"/> changes, so a snapshot can be reused until then;
    /// -1 when the listing is made up fresh each time.</summary>
    public virtual long Generation(string rel) => -1;

    /// <summary>The host object for a synthetic node that the host itself must be given (a file to read, a link
    /// to readlink).</summary>
    public virtual string Materialize(string rel, Node node) => node.HostPath ?? throw new InvalidOperationException($"no host object for {rel}");

    /// <summary>The host directory whose mode, owner and times a snapshot of <paramref name="rel"/> copies.</summary>
    public virtual string? AttributesOf(string rel, Node node) => node.HostPath;

    /// <summary>Makes an existing node writable in place (copying it up if it lives in a read-only layer); gives the
    /// host path the write goes to.</summary>
    /// <summary>Whether <see cref="PrepareWrite"/> of <paramref name="node"/> changes what names resolve to (a copy-up).</summary>
    public virtual bool WriteChangesNames(Node node) => false;

    public virtual int PrepareWrite(string rel, Node node, bool truncate, out string hostPath)
    {
        hostPath = node.HostPath ?? "";
        return ReadOnly ? Errno.EROFS : 0;
    }

    /// <summary>Where the host is to create the missing node <paramref name="rel"/>; <paramref name="commit"/> says
    /// the VFS must hear about it afterwards (<see cref="Created"/>).</summary>
    public virtual int PrepareCreate(string rel, Node missing, out string hostPath, out bool commit)
    {
        hostPath = missing.HostPath ?? "";
        commit = false;
        return ReadOnly ? Errno.EROFS : 0;
    }

    public virtual void Created(string rel)
    {
    }

    public virtual int Remove(string rel, Node node, bool directory) =>
        ReadOnly ? Errno.EROFS : directory ? HostFs.Rmdir(node.HostPath!) : HostFs.Unlink(node.HostPath!);

    public virtual int Rename(string from, Node fromNode, string to, Node toNode, uint flags) =>
        ReadOnly ? Errno.EROFS : HostFs.Rename(fromNode.HostPath!, toNode.HostPath!, flags);

    public virtual int Link(string from, Node fromNode, string to, Node toNode) =>
        ReadOnly ? Errno.EROFS : HostFs.Link(fromNode.HostPath!, toNode.HostPath!);

    public virtual int Symlink(string target, string to, Node toNode) =>
        ReadOnly ? Errno.EROFS : HostFs.Symlink(target, toNode.HostPath!);

    /// <summary>The rel path of a host path inside this mount, or null when the mount does not hold it.</summary>
    public virtual string? RelOf(string hostPath) => null;

    /// <summary>Its names change only through the VFS (or, behind the guest's back, by the host): what a walk found in
    /// it may be kept and leased until the namespace changes. Made-up trees (procfs, devfs) are made anew each time.</summary>
    public virtual bool Cacheable => false;

    /// <summary>Its nodes are host objects whose mode and owners decide who may walk and change them (see
    /// <see cref="Permissions"/>); a made-up tree's files are judged by the host when it opens them.</summary>
    public virtual bool ChecksPermissions => false;

    public static string Join(string dir, string rel) => rel.Length == 0 ? dir : dir == "/" ? "/" + rel : dir + "/" + rel;

    /// <summary>The rel path of <paramref name="name"/> in the directory <paramref name="rel"/>.</summary>
    public static string Child(string rel, string name) => rel.Length == 0 ? name : rel + "/" + name;

    public static string Parent(string rel) => rel.LastIndexOf('/') is var i and >= 0 ? rel[..i] : "";

    public static string NameOf(string rel) => rel[(rel.LastIndexOf('/') + 1)..];

    /// <summary>The rel path of <paramref name="hostPath"/> under host directory <paramref name="dir"/>, or null.</summary>
    protected static string? Under(string dir, string hostPath)
    {
        if (hostPath == dir) return "";
        if (dir == "/") return hostPath.StartsWith('/') ? hostPath[1..] : null;
        return hostPath.StartsWith(dir, StringComparison.Ordinal) && hostPath.Length > dir.Length && hostPath[dir.Length] == '/'
            ? hostPath[(dir.Length + 1)..]
            : null;
    }

    /// <summary>A host directory's entries with their types, as the host lists them.</summary>
    protected static IEnumerable<DirEntry> HostList(string dir)
    {
        // Read natively: .NET's listing decodes names as UTF-8 and loses the bytes that are not.
        if (HostFs.List(dir) is not { } names) yield break;
        foreach (var name in names)
        {
            string host = Join(dir, name);
            var type = HostFs.TypeOf(host);
            if (type != NodeType.None)
                yield return new DirEntry(name, type, type == NodeType.Symlink ? HostFs.ReadLink(host) : null);
        }
    }

    /// <summary>A host node as the walk sees it.</summary>
    protected static Node HostNode(string host, Layer layer)
    {
        var st = HostFs.Lstat(host);
        return new Node(st.Type, host, layer, st.Type == NodeType.Symlink ? HostFs.ReadLink(host) : null, Mode: st.Mode, Uid: st.Uid, Gid: st.Gid);
    }
}

/// <summary>A host directory mounted as it is (a bind mount), or a private one on a host tmpfs (tmpfs).</summary>
internal sealed class HostMount(string guestPoint, string hostDir, bool readOnly, string fsType) : Mount(guestPoint, readOnly)
{
    public string HostDir { get; } = hostDir;

    public override string FsType => fsType;
    public override string Source => fsType == "tmpfs" ? "tmpfs" : HostDir;

    public override Node Lookup(string rel) => HostNode(Join(HostDir, rel), Layer.Host);

    public override IEnumerable<DirEntry> List(string rel) => HostList(Join(HostDir, rel));

    public override int PrepareCreate(string rel, Node missing, out string hostPath, out bool commit)
    {
        commit = false;
        hostPath = Join(HostDir, rel);
        return ReadOnly ? Errno.EROFS : 0;
    }

    public override string? RelOf(string hostPath) => Under(HostDir, hostPath);

    public override bool Cacheable => true;

    public override bool ChecksPermissions => true;
}
