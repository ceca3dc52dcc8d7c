using System.Runtime.InteropServices;
using UmlMicro.Contracts.Linux;

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

/// <summary>Which inode a host path names: device, inode number and birth time (0 where the filesystem keeps none), so
/// that a number the filesystem gives again to a new file is another identity. With what the xattr checks need.</summary>
internal readonly record struct InodeStat(uint DevMajor, uint DevMinor, ulong Ino, long BirthSec, uint BirthNsec, uint Nlink, uint Mode,
    bool Immutable, bool AppendOnly)
{
    /// <summary>The identity as a file name: hex digits, '.' and '-' only.</summary>
    public string Key => $"{DevMajor:x}.{DevMinor:x}-{Ino:x}-{BirthSec:x}.{BirthNsec:x}";
}

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

    [LibraryImport(Libc, EntryPoint = "lstat", SetLastError = true, StringMarshalling = StringMarshalling.Custom, StringMarshallingCustomType = typeof(PathMarshaller))]
    private static partial int lstat_(string path, StatBuf* buf);

    [LibraryImport(Libc, EntryPoint = "stat", SetLastError = true, StringMarshalling = StringMarshalling.Custom, StringMarshallingCustomType = typeof(PathMarshaller))]
    private static partial int stat_(string path, StatBuf* buf);

    [LibraryImport(Libc, EntryPoint = "readlink", SetLastError = true, StringMarshalling = StringMarshalling.Custom, StringMarshallingCustomType = typeof(PathMarshaller))]
    private static partial nint readlink_(string path, byte* buf, nint size);

    [LibraryImport(Libc, EntryPoint = "unlink", SetLastError = true, StringMarshalling = StringMarshalling.Custom, StringMarshallingCustomType = typeof(PathMarshaller))]
    private static partial int unlink_(string path);

    [LibraryImport(Libc, EntryPoint = "rmdir", SetLastError = true, StringMarshalling = StringMarshalling.Custom, StringMarshallingCustomType = typeof(PathMarshaller))]
    private static partial int rmdir_(string path);

    [LibraryImport(Libc, EntryPoint = "mkdir", SetLastError = true, StringMarshalling = StringMarshalling.Custom, StringMarshallingCustomType = typeof(PathMarshaller))]
    private static partial int mkdir_(string path, uint mode);

    [LibraryImport(Libc, EntryPoint = "renameat2", SetLastError = true, StringMarshalling = StringMarshalling.Custom, StringMarshallingCustomType = typeof(PathMarshaller))]
    private static partial int renameat2_(int olddirfd, string oldpath, int newdirfd, string newpath, uint flags);

    [LibraryImport(Libc, EntryPoint = "link", SetLastError = true, StringMarshalling = StringMarshalling.Custom, StringMarshallingCustomType = typeof(PathMarshaller))]
    private static partial int link_(string oldpath, string newpath);

    [LibraryImport(Libc, EntryPoint = "symlink", SetLastError = true, StringMarshalling = StringMarshalling.Custom, StringMarshallingCustomType = typeof(PathMarshaller))]
    private static partial int symlink_(string target, string linkpath);

    [LibraryImport(Libc, EntryPoint = "chmod", SetLastError = true, StringMarshalling = StringMarshalling.Custom, StringMarshallingCustomType = typeof(PathMarshaller))]
    private static partial int chmod_(string path, uint mode);

    [LibraryImport(Libc, EntryPoint = "lchown", SetLastError = true, StringMarshalling = StringMarshalling.Custom, StringMarshallingCustomType = typeof(PathMarshaller))]
    private static partial int lchown_(string path, uint uid, uint gid);

    [LibraryImport(Libc, EntryPoint = "access", SetLastError = true, StringMarshalling = StringMarshalling.Custom, StringMarshallingCustomType = typeof(PathMarshaller))]
    private static partial int access_(string path, int mode);

    [LibraryImport(Libc, EntryPoint = "utimensat", SetLastError = true, StringMarshalling = StringMarshalling.Custom, StringMarshallingCustomType = typeof(PathMarshaller))]
    private static partial int utimensat_(int dirfd, string path, TimeSpec* times, int flags);

    [LibraryImport(Libc, EntryPoint = "mknod", SetLastError = true, StringMarshalling = StringMarshalling.Custom, StringMarshallingCustomType = typeof(PathMarshaller))]
    private static partial int mknod_(string path, uint mode, ulong dev);

    [LibraryImport(Libc, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Custom, StringMarshallingCustomType = typeof(PathMarshaller))]
    private static partial int open_(string path, int flags, uint mode);

    [LibraryImport(Libc, EntryPoint = "opendir", SetLastError = true, StringMarshalling = StringMarshalling.Custom, StringMarshallingCustomType = typeof(PathMarshaller))]
    private static partial nint opendir_(string path);

    [LibraryImport(Libc, EntryPoint = "readdir", SetLastError = true)]
    private static partial byte* readdir_(nint dir);

    [LibraryImport(Libc, EntryPoint = "closedir")]
    private static partial int closedir_(nint dir);

    [LibraryImport(Libc, EntryPoint = "close")]
    private static partial int close_(int fd);

    [LibraryImport(Libc, EntryPoint = "read", SetLastError = true)]
    private static partial nint read_(int fd, byte* buf, nint count);

    [LibraryImport(Libc, EntryPoint = "write", SetLastError = true)]
    private static partial nint write_(int fd, byte* buf, nint count);

    [LibraryImport(Libc, EntryPoint = "fchmod", SetLastError = true)]
    private static partial int fchmod_(int fd, uint mode);

    [LibraryImport(Libc, EntryPoint = "copy_file_range", SetLastError = true)]
    private static partial nint copy_file_range_(int fdIn, long* offIn, int fdOut, long* offOut, nint len, uint flags);

    [LibraryImport(Libc, EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Custom, StringMarshallingCustomType = typeof(PathMarshaller))]
    private static partial int statx_(int dirfd, string path, int flags, uint mask, byte* buf);

    [LibraryImport(Libc, EntryPoint = "getxattr", SetLastError = true, StringMarshalling = StringMarshalling.Custom, StringMarshallingCustomType = typeof(PathMarshaller))]
    private static partial nint getxattr_(string path, string name, byte* value, nuint size);

    [LibraryImport(Libc, EntryPoint = "lgetxattr", SetLastError = true, StringMarshalling = StringMarshalling.Custom, StringMarshallingCustomType = typeof(PathMarshaller))]
    private static partial nint lgetxattr_(string path, string name, byte* value, nuint size);

    [LibraryImport(Libc, EntryPoint = "listxattr", SetLastError = true, StringMarshalling = StringMarshalling.Custom, StringMarshallingCustomType = typeof(PathMarshaller))]
    private static partial nint listxattr_(string path, byte* list, nuint size);

    [LibraryImport(Libc, EntryPoint = "llistxattr", SetLastError = true, StringMarshalling = StringMarshalling.Custom, StringMarshallingCustomType = typeof(PathMarshaller))]
    private static partial nint llistxattr_(string path, byte* list, nuint size);

    private const int AT_FDCWD = -100, AT_SYMLINK_NOFOLLOW = 0x100;
    private const uint STATX_BASIC_STATS = 0x7ff, STATX_BTIME = 0x800;
    private const ulong STATX_ATTR_IMMUTABLE = 0x10, STATX_ATTR_APPEND = 0x20;
    private const int O_RDONLY = 0, O_WRONLY = 1, O_CREAT = 0x40, O_EXCL = 0x80, O_TRUNC = 0x200, O_NOFOLLOW = 0x20000, O_CLOEXEC = 0x80000;
    private const int EINTR = 4;
    // struct dirent (glibc, x86-64): d_ino, d_off, d_reclen, d_type, then d_name.
    private const int DirentName = 19;

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

    /// <summary>Whether <paramref name="path"/>, its links followed, is a directory.</summary>
    public static bool IsDirectory(string path) => Inode(path, follow: true, out var inode) == 0 && (inode.Mode & 0xF000) == 0x4000;

    /// <summary>The inode <paramref name="path"/> names (its last symlink followed when <paramref name="follow"/>); the
    /// errno when there is none.</summary>
    public static int Inode(string path, bool follow, out InodeStat inode)
    {
        // struct statx: mask at 0, attributes at 8, nlink at 16, mode at 28, ino at 32, btime at 80, dev at 136.
        var buf = stackalloc byte[256];
        inode = default;
        if (statx_(AT_FDCWD, path, follow ? 0 : AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS | STATX_BTIME, buf) != 0)
            return Marshal.GetLastPInvokeError();
        uint mask = *(uint*)buf;
        ulong attributes = *(ulong*)(buf + 8);
        bool born = (mask & STATX_BTIME) != 0;
        inode = new InodeStat(*(uint*)(buf + 136), *(uint*)(buf + 140), *(ulong*)(buf + 32), born ? *(long*)(buf + 80) : 0,
            born ? *(uint*)(buf + 88) : 0, *(uint*)(buf + 16), *(ushort*)(buf + 28),
            (attributes & STATX_ATTR_IMMUTABLE) != 0, (attributes & STATX_ATTR_APPEND) != 0);
        return 0;
    }

    /// <summary>The host's value of the extended attribute <paramref name="name"/>, or its errno (ENODATA: none;
    /// EOPNOTSUPP: the filesystem keeps no attributes of that kind).</summary>
    public static int GetXattr(string path, bool follow, string name, out byte[] value)
    {
        value = [];
        for (int size = 256; ; size = XattrBuffer(size))
        {
            var buf = new byte[size];
            nint n;
            fixed (byte* p = buf)
                n = follow ? getxattr_(path, name, p, (nuint)size) : lgetxattr_(path, name, p, (nuint)size);
            if (n >= 0)
            {
                value = buf[..(int)n];
                return 0;
            }
            int err = Marshal.GetLastPInvokeError();
            if (err != Errno.ERANGE || size >= LinuxFlags.XATTR_SIZE_MAX) return err;
        }
    }

    /// <summary>The names of the host's extended attributes of <paramref name="path"/> that its caller may see, or the errno.</summary>
    public static int ListXattr(string path, bool follow, out List<string> names)
    {
        names = [];
        for (int size = 1024; ; size = XattrBuffer(size))
        {
            var buf = new byte[size];
            nint n;
            fixed (byte* p = buf)
                n = follow ? listxattr_(path, p, (nuint)size) : llistxattr_(path, p, (nuint)size);
            if (n >= 0)
            {
                foreach (var name in buf.AsSpan(0, (int)n).Split((byte)0))
                    if (name.End.Value > name.Start.Value) names.Add(PathBytes.Decode(buf.AsSpan(name)));
                return 0;
            }
            int err = Marshal.GetLastPInvokeError();
            if (err != Errno.ERANGE || size >= LinuxFlags.XATTR_LIST_MAX) return err;
        }
    }

    /// <summary>The next size to try when a value or list did not fit: 64 KiB is the most Linux hands out.</summary>
    private static int XattrBuffer(int size) => Math.Min(size * 8, LinuxFlags.XATTR_SIZE_MAX);

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
        return n < 0 ? null : PathBytes.Decode(new ReadOnlySpan<byte>(buf, (int)n));
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

    /// <summary>The names in host directory <paramref name="dir"/> (without "." and ".."), each as its bytes decode
    /// (<see cref="PathBytes"/>); null when it cannot be read.</summary>
    public static List<string>? List(string dir)
    {
        nint d = opendir_(dir);
        if (d == 0) return null;
        var names = new List<string>();
        try
        {
            for (byte* e = readdir_(d); e != null; e = readdir_(d))
            {
                var name = MemoryMarshal.CreateReadOnlySpanFromNullTerminated(e + DirentName);
                if (name is [(byte)'.'] or [(byte)'.', (byte)'.']) continue;
                names.Add(PathBytes.Decode(name));
            }
        }
        finally
        {
            closedir_(d);
        }
        return names;
    }

    /// <summary>A stream of the file <paramref name="path"/>, by its bytes: to read it, or to append to it (made when
    /// missing, mode 0666 less the umask); null when it cannot be opened.</summary>
    public static FileStream? OpenStream(string path, bool append)
    {
        int fd = open_(path, append ? O_WRONLY | O_CREAT | LinuxFlags.O_APPEND | O_NOFOLLOW | O_CLOEXEC : O_RDONLY | O_CLOEXEC, 0x1B6);
        return fd < 0 ? null : new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(fd, ownsHandle: true), append ? FileAccess.Write : FileAccess.Read);
    }

    /// <summary>Makes <paramref name="path"/> an empty regular file (emptying one that is there), mode 0666 less the umask.</summary>
    public static int CreateEmpty(string path)
    {
        int fd = open_(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0x1B6);
        if (fd < 0) return Marshal.GetLastPInvokeError();
        close_(fd);
        return 0;
    }

    /// <summary>Makes <paramref name="path"/>, which must not exist, a regular file of mode <paramref name="mode"/> (whatever
    /// the umask) holding <paramref name="bytes"/>; 0 or the errno. Four calls, no managed stream: procfs writes one
    /// per open of a generated file.</summary>
    public static int WriteNew(string path, ReadOnlySpan<byte> bytes, uint mode)
    {
        int fd = open_(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd < 0) return Marshal.GetLastPInvokeError();
        try
        {
            if (fchmod_(fd, mode) < 0) return Marshal.GetLastPInvokeError();
            fixed (byte* p = bytes)
                for (nint done = 0; done < bytes.Length;)
                {
                    nint w = write_(fd, p + done, bytes.Length - done);
                    if (w < 0 && Marshal.GetLastPInvokeError() == EINTR) continue;
                    if (w < 0) return Marshal.GetLastPInvokeError();
                    done += w;
                }
            return 0;
        }
        finally
        {
            close_(fd);
        }
    }

    /// <summary>Copies the regular file <paramref name="from"/> to <paramref name="to"/>, which must not exist; 0 or the errno.</summary>
    public static int CopyFile(string from, string to)
    {
        int src = open_(from, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0);
        if (src < 0) return Marshal.GetLastPInvokeError();
        int dst = -1;
        try
        {
            dst = open_(to, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0x180);
            if (dst < 0) return Marshal.GetLastPInvokeError();
            bool copied = false;
            while (true)
            {
                nint n = copy_file_range_(src, null, dst, null, 1 << 30, 0);
                if (n > 0)
                {
                    copied = true;
                    continue;
                }
                if (n == 0) return 0;
                int err = Marshal.GetLastPInvokeError();
                if (err == EINTR) continue;
                if (copied) return err;
                break; // not between these filesystems: read and write
            }
            var buf = new byte[128 * 1024];
            fixed (byte* p = buf)
            {
                while (true)
                {
                    nint n = read_(src, p, buf.Length);
                    if (n < 0 && Marshal.GetLastPInvokeError() == EINTR) continue;
                    if (n < 0) return Marshal.GetLastPInvokeError();
                    if (n == 0) return 0;
                    for (nint done = 0; done < n;)
                    {
                        nint w = write_(dst, p + done, n - done);
                        if (w < 0 && Marshal.GetLastPInvokeError() == EINTR) continue;
                        if (w < 0) return Marshal.GetLastPInvokeError();
                        done += w;
                    }
                }
            }
        }
        finally
        {
            close_(src);
            if (dst >= 0) close_(dst);
        }
    }

    /// <summary>The first bytes of the file <paramref name="path"/> (at most the span's length); -1 when it cannot be read.</summary>
    public static int ReadHead(string path, Span<byte> into)
    {
        int fd = open_(path, O_RDONLY | O_CLOEXEC, 0);
        if (fd < 0) return -1;
        try
        {
            int got = 0;
            fixed (byte* p = into)
            {
                while (got < into.Length)
                {
                    nint n = read_(fd, p + got, into.Length - got);
                    if (n < 0 && Marshal.GetLastPInvokeError() == EINTR) continue;
                    if (n < 0) return -1;
                    if (n == 0) break;
                    got += (int)n;
                }
            }
            return got;
        }
        finally
        {
            close_(fd);
        }
    }
}
