using UmlMicro.Contracts.Linux;

namespace UmlMicro.Servers.Vfs;

/// <summary>
/// A guest path walked to its absolute form. <paramref name="MustBeDirectory"/>: the guest ended the path with
/// "/", "." or "..", which Linux takes as a demand that the last component be a directory; it must survive the
/// folding so that the host still answers ENOTDIR or EISDIR where Linux would.
/// </summary>
internal readonly record struct WalkedPath(string GuestPath, bool MustBeDirectory);

/// <summary>
/// This version's namei: the checks Linux makes on the path string itself, then "." and ".." folded lexically,
/// without touching a filesystem. Folding differs from Linux for "x/.." when x is a symlink (Linux goes to the
/// parent of the link's target) or not a directory (Linux fails with ENOTDIR); it also keeps ".." from climbing
/// above a host directory that serves as the guest root, which a real walk must do at every step once the
/// VFS follows symlinks itself.
/// </summary>
internal static class PathWalk
{
    /// <summary>NAME_MAX: the longest component, in bytes.</summary>
    public const int NameMax = 255;

    /// <summary>
    /// 0, or the errno Linux gives for the string before it walks it: ENOENT for an empty path (getname),
    /// ENAMETOOLONG for a path of PATH_MAX bytes or more with its NUL, or for any component longer than NAME_MAX
    /// (also one that a later ".." would cancel: Linux looks it up before it reads the "..").
    /// </summary>
    public static int Check(string path)
    {
        if (path.Length == 0)
            return Errno.ENOENT;
        if (PathBytes.ByteCount(path) >= LinuxFlags.PATH_MAX)
            return Errno.ENAMETOOLONG;
        foreach (var component in path.AsSpan().Split('/'))
        {
            if (PathBytes.ByteCount(path.AsSpan(component)) > NameMax)
                return Errno.ENAMETOOLONG;
        }
        return 0;
    }

    /// <summary>Walks <paramref name="path"/> from <paramref name="cwd"/> (absolute and already walked) or, when it
    /// starts with "/", from the root. ".." at the root stays at the root, and repeated slashes count as one.</summary>
    public static WalkedPath Walk(string cwd, string path)
    {
        var names = new List<string>();
        if (!path.StartsWith('/'))
            names.AddRange(cwd.Split('/', StringSplitOptions.RemoveEmptyEntries));
        string last = "";
        foreach (string name in path.Split('/'))
        {
            last = name;
            if (name == "..")
            {
                if (names.Count > 0)
                    names.RemoveAt(names.Count - 1);
            }
            else if (name is not ("" or "."))
            {
                names.Add(name);
            }
        }
        return new WalkedPath("/" + string.Join('/', names), last is "" or "." or "..");
    }
}
