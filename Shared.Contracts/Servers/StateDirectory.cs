using System;
using System.IO;
using System.Runtime.InteropServices;
using UmlMicro.Contracts.Linux;

namespace UmlMicro.Contracts.Servers;

/// <summary>
/// The private host directories a guest's kernel keeps its state in (the copy-on-write layer, tmpfs contents): removed
/// whole when the guest ends, by the supervisor or, if it was killed, by the VFS.
/// </summary>
public static unsafe partial class StateDirectory
{
    /// <summary>
    /// Removes <paramref name="dir"/> and everything in it; returns the problem, or null. The guest may have left
    /// directories without write or search permission (chmod 555, 000) in it: root removes them anyway, another user
    /// must first give them back to itself, as <c>rm -rf</c> would not. The tree is walked natively, by directory fds
    /// and the names' own bytes: a guest's names need not be UTF-8 (which .NET's delete would look for), and a
    /// directory the guest swaps for a symlink meanwhile is never followed.
    /// </summary>
    public static string? Remove(string dir)
    {
        if (dir.Length == 0 || !Directory.Exists(dir)) return null;
        int err = RemoveDir(AT_FDCWD, PathBytes.EncodeZ(dir), geteuid() != 0);
        return err is 0 or ENOENT ? null : $"{dir}: errno {err}";
    }

    /// <summary>
    /// Makes the absolute directory <paramref name="dir"/> and each missing one above it (mode 0777 less the umask) by
    /// the names' own bytes, as <c>mkdir -p</c>; returns the problem, or null. .NET's would make the UTF-8 of a byte
    /// that is not UTF-8.
    /// </summary>
    public static string? Make(string dir)
    {
        for (int end = dir.IndexOf('/', 1); ; end = dir.IndexOf('/', end + 1))
        {
            string part = end < 0 ? dir : dir[..end];
            fixed (byte* p = PathBytes.EncodeZ(part))
                if (mkdir(p, 0x1FF) != 0 && Marshal.GetLastPInvokeError() is var e and not EEXIST)
                    return $"{part}: {Marshal.GetPInvokeErrorMessage(e)}";
            if (end < 0) break;
        }
        int fd; // EEXIST said nothing of what is there
        fixed (byte* p = PathBytes.EncodeZ(dir)) fd = openat(AT_FDCWD, p, O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
        if (fd < 0) return $"{dir}: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}";
        close(fd);
        return null;
    }

    private const int AT_FDCWD = -100, AT_REMOVEDIR = 0x200;
    private const int O_RDONLY = 0, O_DIRECTORY = 0x10000, O_NOFOLLOW = 0x20000, O_CLOEXEC = 0x80000, O_PATH = 0x200000;
    private const int EACCES = 13, EISDIR = 21, ENOENT = 2, EPERM = 1, EEXIST = 17;
    private const byte DT_DIR = 4;
    // struct dirent (glibc, x86-64): d_ino, d_off, d_reclen, d_type, then d_name.
    private const int DirentType = 18, DirentName = 19;

    /// <summary>Removes the directory <paramref name="nameZ"/> in the directory <paramref name="parent"/> with all it
    /// holds; 0 or the first errno.</summary>
    private static int RemoveDir(int parent, byte[] nameZ, bool openUp)
    {
        int fd;
        fixed (byte* name = nameZ)
        {
            fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
            if (fd < 0 && Marshal.GetLastPInvokeError() == EACCES && openUp)
            {
                // No read or search permission: given back through an O_PATH fd, which follows nothing.
                int path = openat(parent, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
                if (path >= 0)
                {
                    fixed (byte* proc = PathBytes.EncodeZ($"/proc/self/fd/{path}")) chmod(proc, 0x1C0);
                    close(path);
                }
                fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
            }
            if (fd < 0) return Marshal.GetLastPInvokeError();
        }
        if (openUp) fchmod(fd, 0x1C0); // write permission to remove its names
        nint d = fdopendir(fd);
        if (d == 0)
        {
            int e = Marshal.GetLastPInvokeError();
            close(fd);
            return e;
        }
        int first = 0;
        try
        {
            for (byte* entry = readdir(d); entry != null; entry = readdir(d))
            {
                var child = MemoryMarshal.CreateReadOnlySpanFromNullTerminated(entry + DirentName);
                if (child is [(byte)'.'] or [(byte)'.', (byte)'.']) continue;
                byte[] childZ = [.. child, 0];
                int rc;
                if (entry[DirentType] == DT_DIR)
                {
                    rc = RemoveDir(fd, childZ, openUp);
                }
                else
                {
                    fixed (byte* c = childZ) rc = unlinkat(fd, c, 0) == 0 ? 0 : Marshal.GetLastPInvokeError();
                    // A directory on a filesystem that does not give d_type.
                    if (rc is EISDIR or EPERM) rc = RemoveDir(fd, childZ, openUp);
                }
                if (rc != 0 && rc != ENOENT && first == 0) first = rc;
            }
        }
        finally
        {
            closedir(d);
        }
        fixed (byte* name = nameZ)
            if (unlinkat(parent, name, AT_REMOVEDIR) != 0 && first == 0) first = Marshal.GetLastPInvokeError();
        return first;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int openat(int dirfd, byte* path, int flags, uint mode);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint fdopendir(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial byte* readdir(nint dir);

    [LibraryImport("libc")]
    private static partial int closedir(nint dir);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int unlinkat(int dirfd, byte* path, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fchmod(int fd, uint mode);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int mkdir(byte* path, uint mode);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int chmod(byte* path, uint mode);

    [LibraryImport("libc")]
    private static partial int close(int fd);

    [LibraryImport("libc")]
    private static partial uint geteuid();
}
