using System.Runtime.InteropServices;
using System.Text;

namespace UmlMicro.Servers.Vfs.Native;

/// <summary>What kind of object a host path names (lstat's S_IFMT), or None when nothing is there.</summary>
internal enum NodeType
{
    None,
    Directory,
    File,
    Symlink,
    /// <summary>A FIFO, socket or device: opened and used through the host, never copied.</summary>
    Special,
}

/// <summary>The parts of a host stat the VFS decides with.</summary>
internal readonly record struct HostStat(NodeType Type, uint Mode, uint Uid, uint Gid, long Size, long MtimeSec, long MtimeNsec, long AtimeSec, long AtimeNsec);

/// <summary>
/// Every native call of the VFS server, in one place. The VFS carries out namespace changes for the guest
/// (unlink, rename, link, symlink, whiteouts, copy-up), so it needs the host's own errno for each, which .NET's
/// file APIs fold into exceptions; these return 0 or the errno.
/// </summary>
internal static unsafe partial class HostFs
{
    private const string Libc = "libc";
    private const uint S_IFMT = 0xF000, S_IFDIR = 0x4000, S_IFREG = 0x8000, S_IFLNK = 0xA000;
    public const int W_OK = 2, RENAME_NOREPLACE = 1, RENAME_EXCHANGE = 2;

    // struct stat on x86-64.
    [StructLayout(LayoutKind.Sequential)]
    private struct StatBuf
    {
        public ulong Dev, Ino, Nlink;
        public uint Mode, Uid, Gid, Pad0;
        public ulong Rdev;
        public long Size, BlkSize, Blocks;
        public long Atime, AtimeNsec, Mtime, MtimeNsec, Ctime, CtimeNsec;
        public long R0, R1, R2;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Sec, Nsec;
    }

    [LibraryImport(Libc, EntryPoint = "lstat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int lstat_(string path, StatBuf* buf);

    [LibraryImport(Libc, EntryPoint = "stat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int stat_(string path, StatBuf* buf);

    [LibraryImport(Libc, EntryPoint = "readlink", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint readlink_(string path, byte* buf, nint size);

    [LibraryImport(Libc, EntryPoint = "unlink", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int unlink_(string path);

    [LibraryImport(Libc, EntryPoint = "rmdir", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int rmdir_(string path);

    [LibraryImport(Libc, EntryPoint = "mkdir", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int mkdir_(string path, uint mode);

    [LibraryImport(Libc, EntryPoint = "renameat2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int renameat2_(int olddirfd, string oldpath, int newdirfd, string newpath, uint flags);

    [LibraryImport(Libc, EntryPoint = "link", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int link_(string oldpath, string newpath);

    [LibraryImport(Libc, EntryPoint = "symlink", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int symlink_(string target, string linkpath);

    [LibraryImport(Libc, EntryPoint = "chmod", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int chmod_(string path, uint mode);

    [LibraryImport(Libc, EntryPoint = "lchown", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int lchown_(string path, uint uid, uint gid);

    [LibraryImport(Libc, EntryPoint = "access", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int access_(string path, int mode);

    [LibraryImport(Libc, EntryPoint = "utimensat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int utimensat_(int dirfd, string path, TimeSpec* times, int flags);

    [LibraryImport(Libc, EntryPoint = "mknod", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int mknod_(string path, uint mode, ulong dev);

    private const int AT_FDCWD = -100, AT_SYMLINK_NOFOLLOW = 0x100;

    private static int Result(int rc) => rc == 0 ? 0 : Marshal.GetLastPInvokeError();

    public static HostStat Lstat(string path)
    {
        StatBuf st;
        if (lstat_(path, &st) != 0) return default;
        var type = (st.Mode & S_IFMT) switch
        {
            S_IFDIR => NodeType.Directory,
            S_IFREG => NodeType.File,
            S_IFLNK => NodeType.Symlink,
            _ => NodeType.Special,
        };
        return new HostStat(type, st.Mode, st.Uid, st.Gid, st.Size, st.Mtime, st.MtimeNsec, st.Atime, st.AtimeNsec);
    }

    public static NodeType TypeOf(string path) => Lstat(path).Type;

    /// <summary>Whether <paramref name="path"/> still leads to the file with that device (as /proc/PID/maps splits it)
    /// and inode: false once the file was unlinked or replaced.</summary>
    public static bool IsFile(string path, int major, int minor, ulong inode)
    {
        StatBuf st;
        if (stat_(path, &st) != 0) return false;
        // glibc's gnu_dev_major/minor of the 64-bit dev_t.
        int devMajor = (int)(((st.Dev >> 8) & 0xfff) | ((st.Dev >> 32) & 0xfffff000));
        int devMinor = (int)((st.Dev & 0xff) | ((st.Dev >> 12) & 0xffffff00));
        return st.Ino == inode && devMajor == major && devMinor == minor;
    }

    public static string? ReadLink(string path)
    {
        var buf = stackalloc byte[4096];
        nint n = readlink_(path, buf, 4096);
        return n < 0 ? null : Encoding.UTF8.GetString(buf, (int)n);
    }

    public static int Unlink(string path) => Result(unlink_(path));
    public static int Rmdir(string path) => Result(rmdir_(path));
    public static int Mkdir(string path, uint mode) => Result(mkdir_(path, mode));
    public static int Rename(string from, string to, uint flags) => Result(renameat2_(AT_FDCWD, from, AT_FDCWD, to, flags));
    public static int Link(string from, string to) => Result(link_(from, to));
    public static int Symlink(string target, string path) => Result(symlink_(target, path));
    public static int Chmod(string path, uint mode) => Result(chmod_(path, mode & 0xFFF));
    public static int Lchown(string path, uint uid, uint gid) => Result(lchown_(path, uid, gid));
    public static int Access(string path, int mode) => Result(access_(path, mode));
    public static int Mknod(string path, uint mode, ulong dev) => Result(mknod_(path, mode, dev));

    /// <summary>Gives <paramref name="path"/> (not a symlink's target) the times of <paramref name="like"/>.</summary>
    public static void CopyTimes(string path, in HostStat like)
    {
        var times = stackalloc TimeSpec[2];
        times[0] = new TimeSpec { Sec = like.AtimeSec, Nsec = like.AtimeNsec };
        times[1] = new TimeSpec { Sec = like.MtimeSec, Nsec = like.MtimeNsec };
        utimensat_(AT_FDCWD, path, times, AT_SYMLINK_NOFOLLOW);
    }
}
