using System.Text;
using UmlMicro.Contracts.Linux;
using UmlMicro.Contracts.Servers;
using UmlMicro.Contracts.Syscalls;
using UmlMicro.Supervisor.Guest;
using UmlMicro.Supervisor.Servers;

namespace UmlMicro.Supervisor.Syscalls;

/// <summary>
/// Path-taking calls: the VFS resolves every path a guest names, and owns each process's cwd. The
/// data path (read, write, ...) of host-backed files never comes here.
/// </summary>
internal static class SysFile
{
    private const int NoDirFd = -1;

    public static void Register(Dictionary<string, EntryHandler> h)
    {
        h["open"] = c => Resolve(c, NoDirFd, 0, PathOp.Open, FollowUnless(c.IntArg(1), LinuxFlags.O_NOFOLLOW), c.IntArg(1));
        h["openat"] = c => Resolve(c, 0, 1, PathOp.Open, FollowUnless(c.IntArg(2), LinuxFlags.O_NOFOLLOW), c.IntArg(2));
        h["openat2"] = c => OpenAt2(c, (int)GuestMemory.Read<ulong>(c.Tid, c.Arg(2)));
        h["stat"] = c => Resolve(c, NoDirFd, 0, PathOp.Stat, follow: true);
        h["lstat"] = c => Resolve(c, NoDirFd, 0, PathOp.Stat, follow: false);
        h["newfstatat"] = c => Resolve(c, 0, 1, PathOp.Stat, FollowUnless(c.IntArg(3), LinuxFlags.AT_SYMLINK_NOFOLLOW));
        h["statx"] = c => Resolve(c, 0, 1, PathOp.Stat, FollowUnless(c.IntArg(2), LinuxFlags.AT_SYMLINK_NOFOLLOW));
        h["access"] = c => Resolve(c, NoDirFd, 0, PathOp.Access, follow: true);
        h["faccessat"] = c => Resolve(c, 0, 1, PathOp.Access, follow: true);
        h["faccessat2"] = c => Resolve(c, 0, 1, PathOp.Access, FollowUnless(c.IntArg(3), LinuxFlags.AT_SYMLINK_NOFOLLOW));
        h["readlink"] = c => Resolve(c, NoDirFd, 0, PathOp.Readlink, follow: false);
        h["readlinkat"] = c => Resolve(c, 0, 1, PathOp.Readlink, follow: false);
        h["chdir"] = Chdir;
        h["fchdir"] = c => c.AtExit(RecordCwd);
        h["getcwd"] = Getcwd;
    }

    private static bool FollowUnless(int flags, int noFollowBit) => (flags & noFollowBit) == 0;

    private static void OpenAt2(SyscallCall c, int flags) => Resolve(c, 0, 1, PathOp.Open, FollowUnless(flags, LinuxFlags.O_NOFOLLOW), flags);

    /// <summary>
    /// Asks the VFS to resolve the path in argument <paramref name="pathArg"/> (relative to the dirfd in
    /// <paramref name="dirFdArg"/>, or the cwd). An error is the guest's errno; a host path different from
    /// the guest's string would replace the argument.
    /// </summary>
    public static void Resolve(SyscallCall c, int dirFdArg, int pathArg, PathOp op, bool follow, int openFlags = 0)
    {
        if (c.Arg(pathArg) == 0) throw new SyscallError(Errno.EFAULT);
        string path = c.ReadPath(pathArg);
        if (path.Length == 0) return; // "" is the host's to judge: ENOENT, or AT_EMPTY_PATH on the dirfd
        int dirFd = dirFdArg == NoDirFd ? LinuxFlags.AT_FDCWD : c.IntArg(dirFdArg);
        var vfs = c.Kernel.Vfs;
        c.ServerUsed = Server.Vfs;
        var r = vfs.Call(v => v.ResolveAsync(new PathRequest(c.Task.Vpid, dirFd, path, op, follow, openFlags)));
        if (r.Errno != 0) throw new SyscallError(r.Errno);
        if (r.HostPath is not null) c.RewritePath(pathArg, r.HostPath);
        else if (op == PathOp.Chdir && r.GuestPath is not null) c.Note = r.GuestPath;
    }

    private static void Chdir(SyscallCall c)
    {
        Resolve(c, NoDirFd, 0, PathOp.Chdir, follow: true);
        c.AtExit(RecordCwd);
    }

    /// <summary>After a successful chdir/fchdir, tells the VFS where the process now is (as the host resolved it).</summary>
    private static void RecordCwd(SyscallCall c)
    {
        if (c.Result != 0) return;
        string cwd;
        try
        {
            cwd = File.ResolveLinkTarget($"/proc/{c.Tid}/cwd", returnFinalTarget: false)?.FullName ?? "/";
        }
        catch (IOException)
        {
            return; // the task died under us; its cwd no longer matters
        }
        c.Kernel.Vfs.Post(nameof(IVfsServer.SetCwdAsync), c.Task.Vpid, cwd);
    }

    private static void Getcwd(SyscallCall c)
    {
        c.ServerUsed = Server.Vfs;
        var r = c.Kernel.Vfs.Call(v => v.GetCwdAsync(c.Task.Vpid));
        if (r.Errno != 0 || r.Path is null) throw new SyscallError(r.Errno != 0 ? r.Errno : Errno.ENOENT);
        var bytes = Encoding.UTF8.GetBytes(r.Path + "\0");
        if (c.Arg(0) == 0) throw new SyscallError(Errno.EFAULT);
        if ((ulong)bytes.Length > c.Arg(1)) throw new SyscallError(Errno.ERANGE);
        GuestMemory.Write(c.Tid, c.Arg(0), bytes);
        c.Return(bytes.Length);
    }
}
