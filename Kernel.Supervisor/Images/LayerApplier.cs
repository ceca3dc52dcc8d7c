using System.Formats.Tar;

namespace UmlMicro.Supervisor.Images;

/// <summary>
/// Applies an image's layers, in order, onto one directory: each entry of a layer's tar replaces what lower layers
/// had at its path, and its OCI whiteouts remove what they had (<c>.wh.NAME</c> the file NAME, <c>.wh..wh..opq</c>
/// all of a directory's content). Nothing is written outside the directory: a name that is absolute, has a
/// <c>..</c>, or goes through a symlink is refused, a symlink is never followed (it is made, replaced or removed
/// as itself), and a hard link may only name a file already in the tree.
/// </summary>
/// <param name="chown">Whether to give entries the archive's owners (only root can).</param>
internal sealed class LayerApplier(string root, bool chown)
{
    private const UnixFileMode DefaultDirMode = (UnixFileMode)0x1ed; // 0755

    // Directory modes and times are set after the last layer: a read-only directory must stay writable to the
    // unpacking user until then, and its time changes with every entry made in it.
    private readonly Dictionary<string, (UnixFileMode Mode, DateTimeOffset? Time)> directories = new(StringComparer.Ordinal)
    {
        [""] = (DefaultDirMode, null),
    };

    // Paths known to be real directories, so that an entry's parents are looked at once, not at every entry.
    private readonly HashSet<string> checkedDirectories = new(StringComparer.Ordinal) { "" };

    // The paths the current layer made, with their parents: a whiteout hides only what lower layers had.
    private readonly HashSet<string> thisLayer = new(StringComparer.Ordinal);

    public void Apply(Stream tar)
    {
        thisLayer.Clear();
        using var reader = new TarReader(tar, leaveOpen: true);
        while (reader.GetNextEntry() is { } entry) Add(entry);
    }

    /// <summary>Gives the directories their modes and times, the deepest first.</summary>
    public void Finish()
    {
        foreach (var (path, (mode, time)) in directories.OrderByDescending(d => d.Key.Length))
        {
            string full = Full(path);
            File.SetUnixFileMode(full, mode);
            if (time is { } t) Nodes.SetTime(full, t);
        }
    }

    private string Full(string path) => path.Length == 0 ? root : Path.Join(root, path);

    private void Add(TarEntry entry)
    {
        if (entry.EntryType == TarEntryType.GlobalExtendedAttributes) return; // pax defaults, not a file
        string what = $"entry {entry.Name}";
        string path = EntryPath.Relative(entry.Name, what);
        int slash = path.LastIndexOf('/');
        string parent = slash < 0 ? "" : path[..slash], name = path[(slash + 1)..];

        if (path.Length == 0)
        {
            if (entry.EntryType != TarEntryType.Directory) throw new ImageRefused($"{what} makes the root something else than a directory");
            directories[""] = (entry.Mode, entry.ModificationTime);
            return;
        }
        if (name.StartsWith(".wh.", StringComparison.Ordinal))
        {
            Whiteout(parent, name[4..], what);
            return;
        }
        // AUFS's own bookkeeping (.wh..wh.plnk, .wh..wh.aufs) in old Docker layers: never part of the root
        if (path.Split('/').Any(c => c.StartsWith(".wh..wh.", StringComparison.Ordinal))) return;

        switch (entry.EntryType)
        {
            case TarEntryType.CharacterDevice or TarEntryType.BlockDevice:
                // The guest's /dev is the kernel's devfs: the image's device nodes there are never seen.
                if (path.StartsWith("dev/", StringComparison.Ordinal)) return;
                throw new ImageRefused($"{what} is a device node (allowed only beneath dev/)");
            case TarEntryType.Directory or TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile
                or TarEntryType.SymbolicLink or TarEntryType.HardLink or TarEntryType.Fifo:
                break;
            default:
                throw new ImageRefused($"{what} has an unsupported type ({entry.EntryType})");
        }

        Parents(parent, what, make: true);
        string full = Full(path);
        var existing = Nodes.Kind(full);
        if (entry.EntryType == TarEntryType.Directory)
        {
            if (existing != NodeKind.Directory)
            {
                if (existing != NodeKind.None) Remove(path, existing);
                Directory.CreateDirectory(full);
            }
            checkedDirectories.Add(path);
            if (chown) Nodes.Chown(full, entry.Uid, entry.Gid);
            directories[path] = (entry.Mode, entry.ModificationTime);
        }
        else if (entry.EntryType == TarEntryType.HardLink)
        {
            string target = Linked(entry, path);
            if (existing != NodeKind.None) Remove(path, existing);
            // The link shares the target's inode, so it takes none of the entry's metadata (tar does the same).
            Nodes.Link(Full(target), full);
        }
        else
        {
            if (existing != NodeKind.None) Remove(path, existing);
            switch (entry.EntryType)
            {
                case TarEntryType.SymbolicLink:
                    if (entry.LinkName.Length == 0 || entry.LinkName.Contains('\0')) throw new ImageRefused($"{what} is a symlink to no valid path");
                    File.CreateSymbolicLink(full, entry.LinkName);
                    break;
                case TarEntryType.Fifo:
                    Nodes.MakeFifo(full);
                    break;
                default:
                    Write(entry, full, what);
                    break;
            }
            if (chown) Nodes.Chown(full, entry.Uid, entry.Gid);
            // after the owner: chown clears the setuid and setgid bits
            if (entry.EntryType != TarEntryType.SymbolicLink) File.SetUnixFileMode(full, entry.Mode);
            Nodes.SetTime(full, entry.ModificationTime);
        }
        Mark(path);
    }

    private static void Write(TarEntry entry, string full, string what)
    {
        // CreateNew: never into what is there (a symlink, or a file hard linked elsewhere); it was removed first.
        var options = new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        };
        using var file = new FileStream(full, options);
        entry.DataStream?.CopyTo(file);
        if (file.Position != entry.Length) throw new ImageRefused($"{what} is truncated");
    }

    /// <summary>The path of a hard link's target: a file (not a directory) already in the tree.</summary>
    private string Linked(TarEntry entry, string path)
    {
        string what = $"hard link {entry.Name} -> {entry.LinkName}";
        string target = EntryPath.Relative(entry.LinkName, what);
        int slash = target.LastIndexOf('/');
        bool there = target != path && Parents(slash < 0 ? "" : target[..slash], what, make: false)
            && Nodes.Kind(Full(target)) is not (NodeKind.None or NodeKind.Directory);
        return there ? target : throw new ImageRefused($"{what} names no file unpacked before it");
    }

    /// <summary>
    /// Checks that each component of <paramref name="parent"/> is a real directory, making the missing ones when
    /// <paramref name="make"/> (else answering false). A symlink among them is refused: what is beneath it would
    /// be written (or removed) wherever it points.
    /// </summary>
    private bool Parents(string parent, string what, bool make)
    {
        if (checkedDirectories.Contains(parent)) return true;
        string path = "";
        foreach (var component in parent.Split('/'))
        {
            path = path.Length == 0 ? component : $"{path}/{component}";
            if (checkedDirectories.Contains(path)) continue;
            switch (Nodes.Kind(Full(path)))
            {
                case NodeKind.Directory:
                    break;
                case NodeKind.None when make:
                    Directory.CreateDirectory(Full(path));
                    directories[path] = (DefaultDirMode, null);
                    break;
                case NodeKind.None:
                    return false;
                case NodeKind.Symlink:
                    throw new ImageRefused($"{what} goes through the symlink {path}");
                default:
                    throw new ImageRefused($"{what} is beneath {path}, which is not a directory");
            }
            checkedDirectories.Add(path);
        }
        return true;
    }

    /// <summary>A whiteout: removes NAME (or, for the opaque marker, the directory's content) as lower layers made it.</summary>
    private void Whiteout(string parent, string name, string what)
    {
        if (name == ".wh..opq")
        {
            if (Parents(parent, what, make: false) && Nodes.Kind(Full(parent)) == NodeKind.Directory) Hide(parent);
            return;
        }
        if (name is "" or "." or "..") throw new ImageRefused($"{what} whites out no file");
        string path = parent.Length == 0 ? name : $"{parent}/{name}";
        if (!Parents(parent, what, make: false) || thisLayer.Contains(path)) return;
        var kind = Nodes.Kind(Full(path));
        if (kind != NodeKind.None) Remove(path, kind);
    }

    /// <summary>Removes from <paramref name="directory"/> all that lower layers put there, keeping this layer's.</summary>
    private void Hide(string directory)
    {
        foreach (var full in Directory.GetFileSystemEntries(Full(directory)))
        {
            string path = $"{(directory.Length == 0 ? "" : directory + "/")}{Path.GetFileName(full)}";
            var kind = Nodes.Kind(full);
            if (!thisLayer.Contains(path)) Remove(path, kind);
            else if (kind == NodeKind.Directory) Hide(path);
        }
    }

    private void Remove(string path, NodeKind kind)
    {
        if (kind != NodeKind.Directory)
        {
            File.Delete(Full(path));
            return;
        }
        Nodes.DeleteTree(Full(path));
        string beneath = path + "/";
        checkedDirectories.RemoveWhere(p => p == path || p.StartsWith(beneath, StringComparison.Ordinal));
        foreach (var gone in directories.Keys.Where(p => p == path || p.StartsWith(beneath, StringComparison.Ordinal)).ToList())
            directories.Remove(gone);
    }

    /// <summary>Notes <paramref name="path"/> and its parents as this layer's.</summary>
    private void Mark(string path)
    {
        while (path.Length > 0 && thisLayer.Add(path))
        {
            int slash = path.LastIndexOf('/');
            path = slash < 0 ? "" : path[..slash];
        }
    }
}
