using System.Text;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace UmlMicro.Supervisor.Images;

internal enum NodeKind { None, File, Directory, Symlink, Other }

/// <summary>A file's identity for the cache's memo: a changed file has another one.</summary>
internal readonly record struct FileIdentity(ulong Device, ulong Inode, long Size, long MtimeNs)
{
    public override string ToString() => $"{Device}-{Inode}-{Size}-{MtimeNs}";
}

/// <summary>
/// The file calls .NET has no way to make without following a symlink or at all (lstat, lchown, mkfifo, link,
/// utimensat on the link itself): an unpacked tree is full of absolute symlinks that must never be followed.
/// </summary>
internal static unsafe class Nodes
{
    private static byte[] Z(string path) => Encoding.UTF8.GetBytes(path + "\0");

    /// <summary>What is at <paramref name="path"/> itself (a symlink is not followed).</summary>
    public static NodeKind Kind(string path)
    {
        stat st;
        fixed (byte* p = Z(path))
            if (lstat(p, &st) != 0) return NodeKind.None;
        return ((uint)st.st_mode & 0xf000) switch
        {
            0x8000 => NodeKind.File,
            0x4000 => NodeKind.Directory,
            0xa000 => NodeKind.Symlink,
            _ => NodeKind.Other,
        };
    }

    /// <summary>The identity of the file <paramref name="path"/> names (links followed), or null when there is none.</summary>
    public static FileIdentity? Identity(string path)
    {
        stat st;
        fixed (byte* p = Z(path))
            if (stat(p, &st) != 0) return null;
        return new FileIdentity(st.st_dev, st.st_ino, st.st_size, (long)st.st_mtim.tv_sec * 1_000_000_000 + (long)st.st_mtim.tv_nsec);
    }

    public static bool IsRoot => geteuid() == 0;

    public static void Chown(string path, int uid, int gid)
    {
        fixed (byte* p = Z(path))
            if (lchown(p, (uint)uid, (uint)gid) != 0) throw Failed("lchown", path);
    }

    public static void MakeFifo(string path)
    {
        fixed (byte* p = Z(path))
            if (mkfifo(p, 0x180 /* 0600 until the entry's mode is set */) != 0) throw Failed("mkfifo", path);
    }

    public static void Link(string existing, string path)
    {
        fixed (byte* e = Z(existing))
        fixed (byte* p = Z(path))
            if (link(e, p) != 0) throw Failed("link", path);
    }

    /// <summary>Sets the access and modification times of <paramref name="path"/> itself (a symlink too).</summary>
    public static void SetTime(string path, DateTimeOffset time)
    {
        // floored: a time before 1970 has a negative second and still a nanosecond count in [0, 1e9)
        long seconds = Math.DivRem(time.UtcTicks - DateTime.UnixEpoch.Ticks, TimeSpan.TicksPerSecond, out long ticks);
        if (ticks < 0) (seconds, ticks) = (seconds - 1, ticks + TimeSpan.TicksPerSecond);
        var times = stackalloc timespec[2];
        times[0].tv_sec = seconds;
        times[0].tv_nsec = (long_t)(ticks * 100);
        times[1] = times[0];
        fixed (byte* p = Z(path))
            if (utimensat(AT_FDCWD, p, times, AT_SYMLINK_NOFOLLOW) != 0) throw Failed("utimensat", path);
    }

    /// <summary>
    /// Deletes the directory <paramref name="path"/> and all beneath it, symlinks as themselves. Each directory is
    /// made writable first: an unpacked tree has read-only ones, which the unpacking user could not empty.
    /// </summary>
    public static void DeleteTree(string path)
    {
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        foreach (var entry in Directory.GetFileSystemEntries(path))
        {
            if (Kind(entry) == NodeKind.Directory) DeleteTree(entry);
            else File.Delete(entry);
        }
        Directory.Delete(path);
    }

    private static IOException Failed(string call, string path) =>
        new($"{call} {path}: {new System.ComponentModel.Win32Exception(errno).Message}");
}
