using UmlMicro.Contracts.Linux;
using UmlMicro.Contracts.Servers;
using UmlMicro.Servers.Vfs.Native;

namespace UmlMicro.Servers.Vfs.Layers;

/// <summary>
/// The guest's root: a host tree (the lower layer) that is never written, under a private upper layer that takes
/// every change, as overlayfs does. A file is copied up before its first change; a removed lower name becomes a
/// whiteout, kept in memory and in an append-only journal next to the upper layer (so a restarted VFS reads it
/// back); a directory made over a whited-out one is opaque (the lower one's names stay hidden). Renaming a
/// directory that has a lower part is EXDEV, as on overlayfs without redirect_dir: mv falls back to copying.
/// Host paths in <paramref name="hidden"/> (the kernel's own state) do not exist for the guest.
/// </summary>
internal sealed class OverlayMount : Mount
{
    private readonly string _lower, _upper, _journal;
    private readonly MarkedNames _whiteouts = new();
    private readonly MarkedNames _opaque = new();
    private readonly MarkedNames _hidden = new();
    // Directories whose listing the host cannot give as it is, because a hidden or whited-out name is in them.
    private readonly Dictionary<string, int> _shadowedNames = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _generation = new(StringComparer.Ordinal);
    private long _clock;

    public OverlayMount(string guestPoint, string lower, string upper, string journal, IEnumerable<string> hidden)
        : base(guestPoint, readOnly: false)
    {
        _lower = lower;
        _upper = upper;
        _journal = journal;
        if (StateDirectory.Make(upper) is { } problem) throw new IOException($"cannot make the upper layer: {problem}");
        foreach (var host in hidden)
            if (Under(lower, host) is { Length: > 0 } rel && _hidden.Add(rel))
                Shadow(Parent(rel), +1);
        using (var kept = HostFs.OpenStream(journal, append: false))
            if (kept is not null) Replay(new StreamReader(kept).ReadToEnd());
    }

    public override string FsType => "overlay";
    public override string Source => "overlay";

    public string UpperDir => _upper;

    /// <summary>The whiteout journal's name in a kept upper layer (--keep-changes), which the guest never sees.</summary>
    public const string JournalName = ".umlmicro-whiteouts";

    public override Node Lookup(string rel) => Lookup(rel, upperMayHave: true, lowerMayHave: true);

    /// <summary>
    /// A name below a directory the walk has just found. A directory that is only in the lower layer has no upper
    /// half, so nothing under it is in the upper layer; an upper directory that is not merged has no visible lower
    /// directory under it (none there, or opaque), so nothing under it is in the lower layer. That layer is not
    /// probed: on a path of the host's tree the guest never changed, each name costs one lstat instead of two. The
    /// parent was probed a moment before, in the same walk, so this is what the probe would have found then.
    /// </summary>
    public override Node Lookup(string rel, in Node parent) =>
        Lookup(rel, upperMayHave: parent.Layer != Layer.Lower, lowerMayHave: parent.Layer != Layer.Upper || parent.NeedsMerge);

    private Node Lookup(string rel, bool upperMayHave, bool lowerMayHave)
    {
        string up = Join(_upper, rel);
        if (rel == JournalName && _journal == Join(_upper, JournalName)) return Node.Missing(up, Layer.Upper);
        if (IsGone(rel)) return Node.Missing(up, Layer.Upper);
        var upper = upperMayHave ? HostNode(up, Layer.Upper) : Node.Missing(up, Layer.Upper);
        if (upper.Exists)
        {
            bool merged = upper.Type == NodeType.Directory
                && (rel.Length == 0 || (lowerMayHave && !OpaqueAbove(rel) && !_opaque.Contains(rel) && HostFs.TypeOf(Join(_lower, rel)) == NodeType.Directory));
            return upper with { NeedsMerge = merged || _shadowedNames.ContainsKey(rel) };
        }
        if (!lowerMayHave || OpaqueAbove(rel)) return Node.Missing(up, Layer.Upper);
        var lower = HostNode(Join(_lower, rel), Layer.Lower);
        if (!lower.Exists) return Node.Missing(up, Layer.Upper);
        return lower with { NeedsMerge = lower.Type == NodeType.Directory && _shadowedNames.ContainsKey(rel) };
    }

    public override IEnumerable<DirEntry> List(string rel)
    {
        var seen = new Dictionary<string, DirEntry>(StringComparer.Ordinal);
        foreach (var e in HostList(Join(_upper, rel)))
            if (Lookup(Child(rel, e.Name)).Exists) seen[e.Name] = e;
        if (!_opaque.Contains(rel) && !OpaqueAbove(rel) && !IsGone(rel))
            foreach (var e in HostList(Join(_lower, rel)))
                if (!seen.ContainsKey(e.Name) && !IsGone(Child(rel, e.Name))) seen[e.Name] = e;
        return seen.Values;
    }

    /// <summary>Changes the VFS made itself, and both directories' mtimes for entries the host made there (the
    /// guest in the upper one, anyone on the host in the lower one).</summary>
    public override long Generation(string rel)
    {
        var up = HostFs.Lstat(Join(_upper, rel));
        var low = HostFs.Lstat(Join(_lower, rel));
        return HashCode.Combine(_generation.GetValueOrDefault(rel), up.MtimeSec, up.MtimeNsec, low.MtimeSec, low.MtimeNsec) & long.MaxValue;
    }

    public override bool WriteChangesNames(Node node) => node.Layer != Layer.Upper;

    public override int PrepareWrite(string rel, Node node, bool truncate, out string hostPath)
    {
        hostPath = Join(_upper, rel);
        return node.Layer == Layer.Upper ? 0 : CopyUp(rel, node, truncate);
    }

    public override int PrepareCreate(string rel, Node missing, out string hostPath, out bool commit)
    {
        hostPath = Join(_upper, rel);
        commit = _whiteouts.Contains(rel);
        return EnsureUpperDir(Parent(rel));
    }

    /// <summary>The host made <paramref name="rel"/> in the upper layer: its name is the guest's again, and a
    /// directory made where a lower one was removed hides the lower one's names.</summary>
    public override void Created(string rel)
    {
        if (_whiteouts.Contains(rel))
        {
            Unwhiteout(rel);
            if (HostFs.TypeOf(Join(_upper, rel)) == NodeType.Directory) Log('O', rel);
        }
        Touch(Parent(rel));
    }

    public override int Remove(string rel, Node node, bool directory)
    {
        if (rel.Length == 0) return Errno.EBUSY;
        if (directory && List(rel).Any()) return Errno.ENOTEMPTY;
        if (node.Layer == Layer.Upper)
        {
            int rc = directory ? RemoveUpperDir(rel) : HostFs.Unlink(node.HostPath!);
            if (rc != 0) return rc;
        }
        if (LowerHas(rel)) Log('W', rel);
        if (_opaque.Contains(rel)) Log('C', rel);
        Touch(Parent(rel));
        return 0;
    }

    public override int Rename(string from, Node fromNode, string to, Node toNode, uint flags)
    {
        if (from.Length == 0 || to.Length == 0) return Errno.EBUSY;
        if (fromNode.Type == NodeType.Directory && LowerHas(from)) return Errno.EXDEV;
        if ((flags & HostFs.RENAME_EXCHANGE) != 0)
        {
            if (fromNode.Layer != Layer.Upper || toNode.Layer != Layer.Upper || LowerHas(from) || LowerHas(to)) return Errno.EXDEV;
            return Done(HostFs.Rename(fromNode.HostPath!, toNode.HostPath!, flags), from, to);
        }
        if (toNode.Exists && toNode.Type == NodeType.Directory && List(to).Any()) return Errno.ENOTEMPTY;
        int rc = PrepareWrite(from, fromNode, truncate: false, out string upFrom);
        if (rc == 0) rc = EnsureUpperDir(Parent(to));
        if (rc != 0) return rc;
        string upTo = Join(_upper, to);
        // An empty lower directory being replaced has no upper half: the renamed one then hides it.
        bool hidesLowerDir = toNode.Type == NodeType.Directory && LowerHas(to);
        rc = HostFs.Rename(upFrom, upTo, flags);
        if (rc != 0) return rc;
        if (LowerHas(from)) Log('W', from);
        if (_whiteouts.Contains(to)) Unwhiteout(to);
        if (hidesLowerDir || (fromNode.Type == NodeType.Directory && LowerHas(to))) Log('O', to);
        return Done(0, from, to);
    }

    public override int Link(string from, Node fromNode, string to, Node toNode)
    {
        int rc = PrepareWrite(from, fromNode, truncate: false, out string upFrom);
        if (rc == 0) rc = EnsureUpperDir(Parent(to));
        if (rc == 0) rc = HostFs.Link(upFrom, Join(_upper, to));
        if (rc != 0) return rc;
        if (_whiteouts.Contains(to)) Unwhiteout(to);
        return Done(0, from, to);
    }

    public override int Symlink(string target, string to, Node toNode)
    {
        int rc = EnsureUpperDir(Parent(to));
        if (rc == 0) rc = HostFs.Symlink(target, Join(_upper, to));
        if (rc != 0) return rc;
        if (_whiteouts.Contains(to)) Unwhiteout(to);
        Touch(Parent(to));
        return 0;
    }

    public override bool Cacheable => true;

    public override bool ChecksPermissions => true;

    public override string? RelOf(string hostPath)
    {
        if (Under(_upper, hostPath) is { } up) return up;
        return Under(_lower, hostPath) is { } low && !IsGone(low) ? low : null;
    }

    private int Done(int rc, string from, string to)
    {
        if (rc == 0)
        {
            Touch(Parent(from));
            Touch(Parent(to));
        }
        return rc;
    }

    private bool IsGone(string rel) => rel.Length > 0 && (_whiteouts.AtOrAbove(rel) || _hidden.AtOrAbove(rel));

    private bool OpaqueAbove(string rel) => _opaque.Above(rel);

    private bool LowerHas(string rel) =>
        rel.Length > 0 && !OpaqueAbove(rel) && !_hidden.Contains(rel) && HostFs.TypeOf(Join(_lower, rel)) != NodeType.None;

    /// <summary>Copies a lower node up, with its mode, owner and times, after the directories above it.</summary>
    private int CopyUp(string rel, Node node, bool truncate)
    {
        int rc = EnsureUpperDir(Parent(rel));
        if (rc != 0) return rc;
        string low = node.HostPath!, up = Join(_upper, rel);
        var st = HostFs.Lstat(low);
        // Natively, by the names' own bytes (PathBytes): .NET's file calls would encode an undecodable byte's
        // stand-in as UTF-8.
        switch (node.Type)
        {
            case NodeType.File when truncate:
                rc = HostFs.CreateEmpty(up);
                break;
            case NodeType.File:
                rc = HostFs.CopyFile(low, up);
                break;
            case NodeType.Directory:
                return EnsureUpperDir(rel);
            case NodeType.Symlink:
                rc = HostFs.Symlink(node.LinkText ?? "", up);
                break;
            default:
                rc = HostFs.Mknod(up, st.Mode, 0);
                break;
        }
        if (rc != 0) return rc;
        CopyAttributes(up, st);
        return 0;
    }

    private int EnsureUpperDir(string rel)
    {
        string up = Join(_upper, rel);
        if (HostFs.TypeOf(up) == NodeType.Directory) return 0;
        if (rel.Length > 0 && EnsureUpperDir(Parent(rel)) is var rc and not 0) return rc;
        var st = HostFs.Lstat(Join(_lower, rel));
        int made = HostFs.Mkdir(up, st.Type == NodeType.Directory ? st.Mode & 0xFFF : 0x1ED);
        if (made != 0 && made != 17) return made;
        if (st.Type == NodeType.Directory) CopyAttributes(up, st);
        return 0;
    }

    private static void CopyAttributes(string up, in HostStat st)
    {
        if (st.Type == NodeType.None) return;
        HostFs.Lchown(up, st.Uid, st.Gid);
        if (st.Type != NodeType.Symlink) HostFs.Chmod(up, st.Mode);
        HostFs.CopyTimes(up, st);
    }

    /// <summary>Removes an upper directory whose merged listing is empty, with whatever whiteouts it held.</summary>
    private int RemoveUpperDir(string rel)
    {
        int rc = HostFs.Rmdir(Join(_upper, rel));
        if (rc != 0) return rc;
        foreach (var w in _whiteouts.Where(w => w.StartsWith(rel + "/", StringComparison.Ordinal)).ToList())
            Unwhiteout(w);
        return 0;
    }

    private void Unwhiteout(string rel) => Log('U', rel);

    private void Touch(string dirRel) => _generation[dirRel] = ++_clock;

    private void Shadow(string dirRel, int delta)
    {
        int n = _shadowedNames.GetValueOrDefault(dirRel) + delta;
        if (n > 0) _shadowedNames[dirRel] = n;
        else _shadowedNames.Remove(dirRel);
    }

    /// <summary>
    /// Applies and journals one change: W whiteout, U un-whiteout, O opaque, C not opaque, one a line ("W rel"). A name
    /// may hold any byte but NUL, a newline too: such a rel is written with its length in chars instead, the op in
    /// lower case ("w 3:a\nb"), which a journal of one rel a line never held.
    /// </summary>
    private void Log(char op, string rel)
    {
        if (!Apply(op, rel)) return;
        using var journal = HostFs.OpenStream(_journal, append: true) ?? throw new IOException($"cannot append to the whiteout journal {_journal}");
        journal.Write(System.Text.Encoding.UTF8.GetBytes(rel.Contains('\n')
            ? $"{char.ToLowerInvariant(op)} {rel.Length.ToString(System.Globalization.CultureInfo.InvariantCulture)}:{rel}\n"
            : $"{op} {rel}\n"));
    }

    private void Replay(string journal)
    {
        int at = 0;
        while (at < journal.Length)
        {
            int end = journal.IndexOf('\n', at);
            if (end < 0) end = journal.Length;
            if (end - at > 2 && char.IsLower(journal[at]) && journal[at + 1] == ' ')
            {
                // "w LENGTH:rel": the rel is LENGTH chars long, newlines and all.
                int colon = journal.IndexOf(':', at + 2);
                if (colon > 0 && int.TryParse(journal.AsSpan(at + 2, colon - at - 2), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int length)
                    && colon + 1 + length <= journal.Length)
                {
                    Apply(char.ToUpperInvariant(journal[at]), journal.Substring(colon + 1, length));
                    at = colon + 1 + length + 1;
                    continue;
                }
            }
            if (end - at > 2) Apply(journal[at], journal[(at + 2)..end]);
            at = end + 1;
        }
    }

    private bool Apply(char op, string rel)
    {
        switch (op)
        {
            case 'W' when _whiteouts.Add(rel):
                Shadow(Parent(rel), +1);
                return true;
            case 'U' when _whiteouts.Remove(rel):
                Shadow(Parent(rel), -1);
                return true;
            case 'O':
                return _opaque.Add(rel);
            case 'C':
                return _opaque.Remove(rel);
            default:
                return false;
        }
    }
}
