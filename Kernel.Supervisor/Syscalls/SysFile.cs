using System.Text;
using UmlMicro.Contracts.Linux;
using UmlMicro.Contracts.Servers;
using UmlMicro.Contracts.Syscalls;
using UmlMicro.Supervisor.Guest;
using UmlMicro.Supervisor.Native;
using UmlMicro.Supervisor.Servers;

namespace UmlMicro.Supervisor.Syscalls;

/// <summary>
/// Path-taking calls: the VFS resolves every path a guest names (the host is then given the host path it found),
/// carries out the namespace changes that must keep its layers in step (unlink, rmdir, rename, link, symlink),
/// and owns each process's cwd. The data path (read, write, ...) of host-backed files never comes here.
/// </summary>
internal static class SysFile
{
    private const int NoDirFd = -1;
    private const int IN_DONT_FOLLOW = 0x02000000;
    private const int AT_EACCESS = 0x200;
    private const int RENAME_WHITEOUT = 4;

    /// <summary>
    /// The calls of this family that must be served on the tracer thread: the fd changes (fchmod and the like, and
    /// the empty or NULL path forms of fchownat, fchmodat2, utimensat and futimesat) inject a call, and fchdir has
    /// nothing to ask at its entry. Every other handler here
    /// only reads guest memory, asks servers and sets arguments (a rewritten path goes into the scratch area, made by
    /// then), so it may be served off the tracer (see SyscallRouter.RunsOffTracer).
    /// </summary>
    public static readonly string[] OnTracerOnly =
        ["fchmod", "fchown", "fsetxattr", "fremovexattr", "utimensat", "futimesat", "fchownat", "fchmodat2", "fchdir"];

    public static void Register(Dictionary<string, EntryHandler> h)
    {
        h["open"] = c => Open(c, NoDirFd, 0, c.IntArg(1));
        h["openat"] = c => Open(c, 0, 1, c.IntArg(2));
        h["openat2"] = OpenAt2;
        h["creat"] = c => Open(c, NoDirFd, 0, LinuxFlags.O_CREAT | LinuxFlags.O_WRONLY | LinuxFlags.O_TRUNC);
        h["stat"] = c => Resolve(c, NoDirFd, 0, PathOp.Stat, follow: true);
        h["lstat"] = c => Resolve(c, NoDirFd, 0, PathOp.Stat, follow: false);
        // With AT_EMPTY_PATH, NULL is "" (Linux 6.11): the fd's own file, or the cwd, which only the host can stat.
        h["newfstatat"] = c => Resolve(c, 0, 1, PathOp.Stat, FollowUnless(c.IntArg(3), LinuxFlags.AT_SYMLINK_NOFOLLOW),
            nullIsEmpty: (c.IntArg(3) & LinuxFlags.AT_EMPTY_PATH) != 0);
        h["statx"] = c => Resolve(c, 0, 1, PathOp.Stat, FollowUnless(c.IntArg(2), LinuxFlags.AT_SYMLINK_NOFOLLOW),
            nullIsEmpty: (c.IntArg(2) & LinuxFlags.AT_EMPTY_PATH) != 0);
        // access asks with the real ids (do_faccessat's override), faccessat2 with AT_EACCESS with the effective ones.
        h["access"] = c => Resolve(c, NoDirFd, 0, PathOp.Access, follow: true, c.IntArg(1), creds: SysCreds.OfAccess(c));
        h["faccessat"] = c => Resolve(c, 0, 1, PathOp.Access, follow: true, c.IntArg(2), creds: SysCreds.OfAccess(c));
        h["faccessat2"] = c => Resolve(c, 0, 1, PathOp.Access, FollowUnless(c.IntArg(3), LinuxFlags.AT_SYMLINK_NOFOLLOW), c.IntArg(2),
            creds: (c.IntArg(3) & AT_EACCESS) != 0 ? SysCreds.Of(c) : SysCreds.OfAccess(c));
        h["readlink"] = c => Readlink(c, NoDirFd, 0, 2);
        h["readlinkat"] = c => Readlink(c, 0, 1, 3);
        h["chdir"] = Chdir;
        h["fchdir"] = c => c.AtExit(RecordCwd);
        h["getcwd"] = Getcwd;

        // In-place changes: a file in a read-only layer is copied up first. The forms with an empty path change the
        // file an fd holds (the cwd for AT_FDCWD): they are the fd changes below, through the same copy-up.
        h["truncate"] = c => Resolve(c, NoDirFd, 0, PathOp.Modify, follow: true);
        h["chmod"] = c => Resolve(c, NoDirFd, 0, PathOp.Modify, follow: true);
        h["fchmodat"] = c => Resolve(c, 0, 1, PathOp.Modify, follow: true);
        h["fchmodat2"] = c =>
        {
            if (EmptyPathForm(c, 1, c.IntArg(3))) FdModify(c, 0, FCHMODAT, [AtFdCwd, ScratchPath, c.Arg(2)], emptyPath: true);
            else Resolve(c, 0, 1, PathOp.Modify, FollowUnless(c.IntArg(3), LinuxFlags.AT_SYMLINK_NOFOLLOW));
        };
        h["chown"] = c => Resolve(c, NoDirFd, 0, PathOp.Modify, follow: true);
        h["lchown"] = c => Resolve(c, NoDirFd, 0, PathOp.Modify, follow: false);
        h["fchownat"] = c =>
        {
            if (EmptyPathForm(c, 1, c.IntArg(4)))
                FdModify(c, 0, FCHOWNAT, [AtFdCwd, ScratchPath, c.Arg(2), c.Arg(3), LinuxFlags.AT_SYMLINK_NOFOLLOW], emptyPath: true);
            else Resolve(c, 0, 1, PathOp.Modify, FollowUnless(c.IntArg(4), LinuxFlags.AT_SYMLINK_NOFOLLOW));
        };
        h["utime"] = c => Resolve(c, NoDirFd, 0, PathOp.Modify, follow: true);
        h["utimes"] = c => Resolve(c, NoDirFd, 0, PathOp.Modify, follow: true);
        // A NULL path with a dirfd (not AT_FDCWD, which is EFAULT) changes the fd's file (do_utimes).
        h["futimesat"] = c =>
        {
            if (c.Arg(1) == 0) FdModify(c, 0, FUTIMESAT, [AtFdCwd, ScratchPath, c.Arg(2)]);
            else Resolve(c, 0, 1, PathOp.Modify, follow: true);
        };
        h["utimensat"] = c =>
        {
            // futimens; with flags it is the host's EINVAL, and changes nothing.
            if (c.Arg(1) == 0 && c.IntArg(3) == 0) FdModify(c, 0, UTIMENSAT, [AtFdCwd, ScratchPath, c.Arg(2), LinuxFlags.AT_SYMLINK_NOFOLLOW]);
            else if (c.Arg(1) == 0) return;
            else if (EmptyPathForm(c, 1, c.IntArg(3)))
                FdModify(c, 0, UTIMENSAT, [AtFdCwd, ScratchPath, c.Arg(2), LinuxFlags.AT_SYMLINK_NOFOLLOW], emptyPath: true);
            else Resolve(c, 0, 1, PathOp.Modify, FollowUnless(c.IntArg(3), LinuxFlags.AT_SYMLINK_NOFOLLOW));
        };
        h["fchmod"] = c => FdModify(c, 0, FCHMODAT, [AtFdCwd, ScratchPath, c.Arg(1)]);
        h["fchown"] = c => FdModify(c, 0, FCHOWNAT, [AtFdCwd, ScratchPath, c.Arg(1), c.Arg(2), LinuxFlags.AT_SYMLINK_NOFOLLOW]);
        // Extended attributes: a name of the namespaces the kernel keeps (XattrCall.IsKept) is the VFS's, any other the
        // host's, on the host path the VFS resolves; a list is the VFS's, which merges the host's names and the kept ones.
        h["fsetxattr"] = c =>
        {
            if (KeptSet(c) is { } call) FdXattr(c, call);
            else FdModify(c, 0, LSETXATTR, [ScratchPath, c.Arg(1), c.Arg(2), c.Arg(3), c.Arg(4)]);
        };
        h["fremovexattr"] = c =>
        {
            if (KeptName(c) is { } name) FdXattr(c, new XattrCall(XattrOp.Remove, name));
            else FdModify(c, 0, LREMOVEXATTR, [ScratchPath, c.Arg(1)]);
        };
        h["setxattr"] = c => SetXattr(c, follow: true);
        h["lsetxattr"] = c => SetXattr(c, follow: false);
        h["removexattr"] = c => RemoveXattr(c, follow: true);
        h["lremovexattr"] = c => RemoveXattr(c, follow: false);
        h["getxattr"] = c => GetXattr(c, follow: true);
        h["lgetxattr"] = c => GetXattr(c, follow: false);
        h["fgetxattr"] = c =>
        {
            if (KeptName(c) is { } name) FdXattr(c, new XattrCall(XattrOp.Get, name, Size: BufferSize(c, 3, LinuxFlags.XATTR_SIZE_MAX)), 2);
        };
        h["listxattr"] = c => PathXattr(c, follow: true, new XattrCall(XattrOp.List, Size: BufferSize(c, 2, LinuxFlags.XATTR_LIST_MAX)), 1);
        h["llistxattr"] = c => PathXattr(c, follow: false, new XattrCall(XattrOp.List, Size: BufferSize(c, 2, LinuxFlags.XATTR_LIST_MAX)), 1);
        h["flistxattr"] = c => FdXattr(c, new XattrCall(XattrOp.List, Size: BufferSize(c, 2, LinuxFlags.XATTR_LIST_MAX)), 1);

        // Lookups that read about an object without opening it.
        h["statfs"] = c => Resolve(c, NoDirFd, 0, PathOp.Lookup, follow: true);
        h["name_to_handle_at"] = c => Resolve(c, 0, 1, PathOp.Lookup, follow: (c.IntArg(4) & LinuxFlags.AT_SYMLINK_FOLLOW) != 0);
        h["inotify_add_watch"] = c => Resolve(c, 0, 1, PathOp.Lookup, FollowUnless(c.IntArg(2), IN_DONT_FOLLOW), dirFdIsPlainFd: true);

        // New entries the host makes, with the guest's umask.
        h["mkdir"] = c => Resolve(c, NoDirFd, 0, PathOp.Create, follow: false);
        h["mkdirat"] = c => Resolve(c, 0, 1, PathOp.Create, follow: false);
        h["mknod"] = c => Resolve(c, NoDirFd, 0, PathOp.Create, follow: false, c.IntArg(1));
        h["mknodat"] = c => Resolve(c, 0, 1, PathOp.Create, follow: false, c.IntArg(2));

        // Namespace changes the VFS carries out.
        h["unlink"] = c => Change(c, NameOp.Unlink, Arg(c, NoDirFd, 0));
        h["rmdir"] = c => Change(c, NameOp.Rmdir, Arg(c, NoDirFd, 0));
        h["unlinkat"] = c => Change(c, (c.IntArg(2) & LinuxFlags.AT_REMOVEDIR) != 0 ? NameOp.Rmdir : NameOp.Unlink, Arg(c, 0, 1),
            badFlags: (c.IntArg(2) & ~LinuxFlags.AT_REMOVEDIR) != 0);
        h["rename"] = c => Change(c, NameOp.Rename, Arg(c, NoDirFd, 0), Arg(c, NoDirFd, 1));
        h["renameat"] = c => Change(c, NameOp.Rename, Arg(c, 0, 1), Arg(c, 2, 3));
        h["renameat2"] = c => Change(c, NameOp.Rename, Arg(c, 0, 1), Arg(c, 2, 3), flags: c.IntArg(4),
            badFlags: (c.IntArg(4) & ~7) != 0 || (c.IntArg(4) & RENAME_WHITEOUT) != 0 || c.IntArg(4) == 3);
        h["link"] = c => Change(c, NameOp.Link, Arg(c, NoDirFd, 0), Arg(c, NoDirFd, 1));
        h["linkat"] = LinkAt;
        h["symlink"] = c => Change(c, NameOp.Symlink, Arg(c, NoDirFd, 1), target: Target(c, 0));
        h["symlinkat"] = c => Change(c, NameOp.Symlink, Arg(c, 1, 2), target: Target(c, 0));
    }

    private const long FCHMODAT = 268, FCHOWNAT = 260, UTIMENSAT = 280, FUTIMESAT = 261, LSETXATTR = 189, LREMOVEXATTR = 198;

    /// <summary>
    /// "" with AT_EMPTY_PATH, and no flag the call does not know (those are the host's EINVAL, which changes nothing):
    /// the call changes the file its dirfd holds.
    /// </summary>
    private static bool EmptyPathForm(SyscallCall c, int pathArg, int flags) =>
        (flags & LinuxFlags.AT_EMPTY_PATH) != 0 && (flags & ~(LinuxFlags.AT_EMPTY_PATH | LinuxFlags.AT_SYMLINK_NOFOLLOW)) == 0 &&
        c.Arg(pathArg) != 0 && c.ReadPath(pathArg).Length == 0;
    private const ulong AtFdCwd = unchecked((ulong)LinuxFlags.AT_FDCWD);

    /// <summary>Marks the argument of a path variant that is to be the host path of an fd's file.</summary>
    private const ulong ScratchPath = ulong.MaxValue;

    /// <summary>
    /// A change made through an fd (fchmod, fchown, futimens, fsetxattr, fremovexattr, and the empty-path forms of the
    /// *at calls): an fd opened read-only on a file of the read-only layer still reaches the host's file, which must not
    /// change. The VFS copies the file up, and the kernel makes the same change on the copy, through the path variant
    /// of the call (injected into the guest, so it runs with the guest's rights), as overlayfs does. A file in a
    /// read-only mount is EROFS, as Linux answers before any permission check. Any other fd is the host's to serve.
    /// </summary>
    /// <param name="emptyPath">The *at form with "": AT_FDCWD means the cwd, and an O_PATH fd is fine; the plain fd
    /// calls refuse an O_PATH fd (the host's EBADF) and AT_FDCWD names nothing.</param>
    private static void FdModify(SyscallCall c, int fdArg, long pathVariant, ulong[] args, bool emptyPath = false)
    {
        if (FdCopy(c, c.IntArg(fdArg), emptyPath) is not { } slot)
        {
            c.AtExit(AttributesChanged);
            return;
        }
        var injector = c.Injector ?? throw new InvalidOperationException("no tracer to inject the path variant");
        c.Return(injector.Inject(c.Task, pathVariant, args.Select(a => a == ScratchPath ? slot : a).ToArray()));
        AttributesChanged(c);
    }

    /// <summary>
    /// A call that may have changed an object's mode, owner or ACL has ended: what the VFS answered before it may no
    /// longer be what it would answer (who may search a directory). Leases asked before now are void, and the VFS
    /// forgets the directories it kept.
    /// </summary>
    private static void AttributesChanged(SyscallCall c)
    {
        c.Kernel.Names?.AttributesChanged();
        c.Kernel.Vfs.Post(nameof(IVfsServer.AttributesChangedAsync));
    }

    /// <summary>
    /// When the file fd <paramref name="fd"/> holds lies in a read-only layer: copies it up and returns the guest
    /// address (in the scratch area) of the copy's host path; null when the host may change the file the fd holds.
    /// </summary>
    internal static ulong? FdCopy(SyscallCall c, int fd, bool emptyPath = false)
    {
        string? target = fd == LinuxFlags.AT_FDCWD && emptyPath ? ProcLink($"/proc/{c.Tid}/cwd") : FdTarget(c.Tid, fd);
        if (target is null || !target.StartsWith('/')) return null;
        if (!emptyPath && IsPathFd(c.Tid, fd)) return null;
        c.ServerUsed = Server.Vfs;
        if (c.Kernel.Vfs.Call(v => v.GuestPathAsync(target)) is not { } guest) return null;
        var r = Ask(c, new PathRequest(c.Task.Vpid, c.Task.Vtid, new PathArg(guest), PathOp.Modify, FollowLast: false, SysCreds.Of(c)));
        if (r.Errno == Errno.EROFS) throw new SyscallError(Errno.EROFS);
        if (r.Errno != 0 || r.HostPath is not { } copy || copy == target) return null;
        var bytes = PathBytes.EncodeZ(copy);
        if (bytes.Length > SyscallCall.ScratchBytesFrom(3)) throw new SyscallError(Errno.ENAMETOOLONG);
        ulong slot = c.ScratchSlotAddress(3);
        GuestMemory.Write(c.Tid, slot, bytes);
        c.Note = copy;
        return slot;
    }

    /// <summary>An O_PATH fd, which every call that changes a file through an fd refuses (EBADF).</summary>
    private static bool IsPathFd(int hostTid, int fd)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{hostTid}/fdinfo/{fd}"))
                if (line.StartsWith("flags:", StringComparison.Ordinal))
                    return (Convert.ToInt32(line[6..].Trim(), 8) & LinuxFlags.O_PATH) != 0;
        }
        catch (IOException)
        {
        }
        return false;
    }

    private static void SetXattr(SyscallCall c, bool follow)
    {
        if (KeptSet(c) is { } call) PathXattr(c, follow, call);
        else Resolve(c, NoDirFd, 0, PathOp.Modify, follow);
    }

    private static void RemoveXattr(SyscallCall c, bool follow)
    {
        if (KeptName(c) is { } name) PathXattr(c, follow, new XattrCall(XattrOp.Remove, name));
        else Resolve(c, NoDirFd, 0, PathOp.Modify, follow);
    }

    private static void GetXattr(SyscallCall c, bool follow)
    {
        if (KeptName(c) is { } name) PathXattr(c, follow, new XattrCall(XattrOp.Get, name, Size: BufferSize(c, 3, LinuxFlags.XATTR_SIZE_MAX)), 2);
        else Resolve(c, NoDirFd, 0, PathOp.Lookup, follow);
    }

    /// <summary>The attribute name in argument 1 when it is one the kernel keeps; null for any other, and for one the host
    /// refuses as it is (EFAULT; ERANGE when it is empty or longer than XATTR_NAME_MAX), as Linux does before the lookup.</summary>
    private static string? KeptName(SyscallCall c)
    {
        byte[]? name;
        try
        {
            name = GuestMemory.ReadCString(c.Tid, c.Arg(1), LinuxFlags.XATTR_NAME_MAX + 1);
        }
        catch (GuestFault)
        {
            return null;
        }
        return name is { Length: > 0 } && PathBytes.Decode(name) is var decoded && XattrCall.IsKept(decoded) ? decoded : null;
    }

    /// <summary>setxattr's checks before its lookup, in setxattr_copy's order (the flags, the name, the size, the value) and
    /// with its errnos, for a name the kernel keeps: the call for the VFS, or null for the host's to make.</summary>
    private static XattrCall? KeptSet(SyscallCall c)
    {
        int flags = c.IntArg(4);
        if ((flags & ~(LinuxFlags.XATTR_CREATE | LinuxFlags.XATTR_REPLACE)) != 0 || KeptName(c) is not { } name) return null;
        ulong size = c.Arg(3);
        if (size > LinuxFlags.XATTR_SIZE_MAX) throw new SyscallError(Errno.E2BIG);
        var value = new byte[size];
        if (size > 0) GuestMemory.Read(c.Tid, c.Arg(2), value);
        return new XattrCall(XattrOp.Set, name, value, flags);
    }

    /// <summary>The size of the guest's buffer in argument <paramref name="i"/>: Linux never hands out more than
    /// <paramref name="most"/>, and reads a larger size as that.</summary>
    private static long BufferSize(SyscallCall c, int i, int most) => (long)Math.Min(c.Arg(i), (ulong)most);

    /// <summary>An attribute call the VFS carries out on the object the path in argument 0 resolves to (a change on the
    /// copy-on-write layer's copy).</summary>
    private static void PathXattr(SyscallCall c, bool follow, XattrCall call, int bufferArg = -1)
    {
        if (Arg(c, NoDirFd, 0) is not { } arg) throw new SyscallError(Errno.ENOENT);
        var op = call.Op is XattrOp.Set or XattrOp.Remove ? PathOp.Modify : PathOp.Lookup;
        Xattr(c, new PathRequest(c.Task.Vpid, c.Task.Vtid, arg, op, follow, SysCreds.Of(c), Xattr: call), bufferArg);
    }

    /// <summary>An attribute call the VFS carries out on the file fd argument 0 holds, which it reaches by the host's
    /// link to it. An O_PATH fd is refused, as the f*xattr calls refuse one (EBADF).</summary>
    private static void FdXattr(SyscallCall c, XattrCall call, int bufferArg = -1)
    {
        int fd = c.IntArg(0);
        if (FdTarget(c.Tid, fd) is null || IsPathFd(c.Tid, fd)) throw new SyscallError(Errno.EBADF);
        var op = call.Op is XattrOp.Set or XattrOp.Remove ? PathOp.Modify : PathOp.Lookup;
        Xattr(c, new PathRequest(c.Task.Vpid, c.Task.Vtid, new PathArg(""), op, FollowLast: true, SysCreds.Of(c),
            Xattr: call with { Fd = $"/proc/{c.Tid}/fd/{fd}" }), bufferArg);
    }

    /// <summary>The VFS's outcome is the call's: its result, and what it read into the guest's buffer.</summary>
    private static void Xattr(SyscallCall c, PathRequest request, int bufferArg)
    {
        var r = Ask(c, request);
        if (r.Errno != 0) throw new SyscallError(r.Errno);
        if (r.Xattr is not { } done || done.Data?.Length > request.Xattr!.Size || done.Data?.Length > done.Result)
            throw new ServerMistake(Contract.VfsName, "vfs/resolve", "answered an attribute call with no outcome, or with more than the guest's buffer holds");
        if (done.Data is { Length: > 0 } data) GuestMemory.Write(c.Tid, c.Arg(bufferArg), data);
        c.Return(done.Result);
    }

    private static bool FollowUnless(int flags, int noFollowBit) => (flags & noFollowBit) == 0;

    /// <summary>readlink's size is an int, refused before the path is looked at.</summary>
    private static void Readlink(SyscallCall c, int dirFdArg, int pathArg, int sizeArg)
    {
        if (c.IntArg(sizeArg) <= 0) throw new SyscallError(Errno.EINVAL);
        Resolve(c, dirFdArg, pathArg, PathOp.Readlink, follow: false);
    }

    /// <summary>struct open_how: flags, mode, resolve, each a u64 (OPEN_HOW_SIZE_VER0).</summary>
    private const int OpenHowSize = 24;

    /// <summary>
    /// openat2: the VFS walks with the resolve flags, as Linux's walk keeps them. When it hands the host another path
    /// (symlinks resolved, a layer's copy), the host is given a copy of open_how without them: they would be judged
    /// again against that absolute host path (BENEATH refuses any), while the guest's own string with the guest's own
    /// dirfd is the host's to judge as it is. RESOLVE_CACHED stays: it refuses only what cannot be done from the cache.
    /// </summary>
    private static void OpenAt2(SyscallCall c)
    {
        if (c.Arg(3) < OpenHowSize) return; // the host's EINVAL
        var how = new byte[OpenHowSize];
        try
        {
            GuestMemory.Read(c.Tid, c.Arg(2), how);
        }
        catch (GuestFault)
        {
            return; // the host's EFAULT
        }
        ulong resolve = BitConverter.ToUInt64(how, 16);
        // Unknown resolve bits, or a mode without O_CREAT|O_TMPFILE, are the host's EINVAL to give.
        const ulong known = LinuxFlags.RESOLVE_NO_XDEV | LinuxFlags.RESOLVE_NO_MAGICLINKS | LinuxFlags.RESOLVE_NO_SYMLINKS
            | LinuxFlags.RESOLVE_BENEATH | LinuxFlags.RESOLVE_IN_ROOT | LinuxFlags.RESOLVE_CACHED;
        if ((resolve & ~known) != 0 || (resolve & (LinuxFlags.RESOLVE_BENEATH | LinuxFlags.RESOLVE_IN_ROOT)) == (LinuxFlags.RESOLVE_BENEATH | LinuxFlags.RESOLVE_IN_ROOT))
            return;
        var r = Open(c, 0, 1, (int)BitConverter.ToUInt64(how, 0), strict: true, (int)resolve);
        if (r?.HostPath is null || (resolve & ~(ulong)LinuxFlags.RESOLVE_CACHED) == 0) return;
        BitConverter.TryWriteBytes(how.AsSpan(16), resolve & LinuxFlags.RESOLVE_CACHED);
        ulong copy = c.ScratchSlotAddress(2);
        GuestMemory.Write(c.Tid, copy, how);
        c.SetArg(2, copy);
        c.SetArg(3, OpenHowSize);
    }

    /// <summary>open's last symlink is followed unless O_NOFOLLOW, or O_CREAT|O_EXCL (which must make a new file).</summary>
    private static PathResolution? Open(SyscallCall c, int dirFdArg, int pathArg, int flags, bool strict = false, int resolve = 0)
    {
        // open and openat drop every flag O_PATH has no use for (build_open_how) before the lookup: O_PATH|O_CREAT
        // neither creates nor fails as an existing file. openat2 refuses them instead, on the host.
        if (!strict && (flags & LinuxFlags.O_PATH) != 0)
            flags &= LinuxFlags.O_PATH | LinuxFlags.O_DIRECTORY | LinuxFlags.O_NOFOLLOW | LinuxFlags.O_CLOEXEC;
        const int createExclusive = LinuxFlags.O_CREAT | LinuxFlags.O_EXCL;
        bool follow = (flags & LinuxFlags.O_NOFOLLOW) == 0 && (flags & createExclusive) != createExclusive;
        return Resolve(c, dirFdArg, pathArg, PathOp.Open, follow, flags, resolve: resolve);
    }

    /// <summary>
    /// Asks the VFS to resolve the path in argument <paramref name="pathArg"/> (relative to the dirfd in
    /// <paramref name="dirFdArg"/>, or the cwd). An error is the guest's errno; a host path different from the
    /// guest's string replaces the argument.
    /// </summary>
    /// <param name="resolve">openat2's resolve flags: BENEATH and IN_ROOT need the dirfd's directory even for an absolute path.</param>
    public static PathResolution? Resolve(SyscallCall c, int dirFdArg, int pathArg, PathOp op, bool follow, int flags = 0, bool dirFdIsPlainFd = false,
        bool nullIsEmpty = false, Credentials? creds = null, int resolve = 0)
    {
        if (dirFdIsPlainFd)
        {
            // inotify_add_watch's first argument is the inotify fd, not a directory: the path is the cwd's.
            dirFdArg = NoDirFd;
        }
        if (nullIsEmpty && c.Arg(pathArg) == 0) return null;
        bool scoped = (resolve & (LinuxFlags.RESOLVE_BENEATH | LinuxFlags.RESOLVE_IN_ROOT)) != 0;
        if (Arg(c, dirFdArg, pathArg, scoped) is not { } arg) return null; // "" is the host's to judge: ENOENT, or AT_EMPTY_PATH
        var r = Ask(c, new PathRequest(c.Task.Vpid, c.Task.Vtid, arg, op, follow, creds ?? SysCreds.Of(c), flags, Resolve: resolve));
        if (r.Errno != 0) throw new SyscallError(r.Errno);
        if (r.HostPath is not null) c.RewritePath(pathArg, r.HostPath);
        return r;
    }

    /// <summary>
    /// A call the VFS answered with PathResolution.MakesName (open with O_CREAT, mkdir, mknod, bind of a missing name),
    /// at its exit: what was leased about missing
    /// names before it is void, since the host makes the entry only after the VFS answered; and a name the VFS hid (a
    /// whiteout) is committed once the host made it (<paramref name="commit"/>, see PathResolution.CommitOnSuccess).
    /// </summary>
    private static void AfterCreate(SyscallCall c, string? commit)
    {
        if (commit is null && c.Kernel.Names is null) return;
        c.MakesName = true;
        c.AtExit(x =>
        {
            x.Kernel.Names?.Created();
            if (commit is not null && x.Result >= 0) x.Kernel.Vfs.Post(nameof(IVfsServer.CreatedAsync), commit);
        });
    }

    /// <summary>
    /// The VFS's answer to a path request; a path through /proc/PID is asked again with the guest's processes from
    /// Sched, and one whose text another server makes (stat from Sched, maps from MM) is made with that server's text
    /// (<see cref="Rendered"/>: the VFS never reaches into another server). An answer the VFS leased is given again
    /// without asking it, a Render too. An answer that makes a name is followed up at the call's exit
    /// (<see cref="AfterCreate"/>). Every path question goes through here: an answer that still needs facts must
    /// never reach the host.
    /// </summary>
    public static PathResolution Ask(SyscallCall c, PathRequest request)
    {
        // A path into /proc will need the guest's processes: sent with the first question when they are at hand (and
        // part of the question, for a lease of an answer made from them).
        if (request.Arg.Path.StartsWith("/proc/", StringComparison.Ordinal) && c.Kernel.ProcessList.TryGetPids(out var known))
            request = request with { Processes = known };
        var names = request.Xattr is null ? c.Kernel.Names : null; // an attribute call is carried out, never leased
        var question = names?.Of(request) ?? default;
        var asked = names?.Asked ?? default;
        if (names is null || !names.TryGet(question, out var r))
        {
            c.ServerUsed = Server.Vfs;
            r = c.Kernel.Vfs.Call(v => v.ResolveAsync(request));
            names?.Grant(question, r, asked);
            if (r.MakesName) AfterCreate(c, r.CommitOnSuccess ? r.GuestPath : null);
            else if (request.Op == PathOp.Modify) c.AtExit(AttributesChanged);
            if (r.NeedProcesses)
            {
                if (request.Processes is not null) throw new InvalidOperationException("the VFS asked twice for the guest's processes");
                request = request with { Processes = c.Kernel.ProcessList.AskPids() };
                r = c.Kernel.Vfs.Call(v => v.ResolveAsync(request));
                if (r.NeedProcesses) throw new InvalidOperationException("the VFS asked twice for the guest's processes");
            }
        }
        return r.Render is { } render ? Rendered(c, request, render) : r;
    }

    /// <summary>
    /// A procfs file whose text <see cref="ProcRender.Owner"/> makes: the owner is asked, with the host's text of the task
    /// and, for a job-control stop, which only the supervisor sees, the Stopped mark; its text is written where the VFS
    /// said, or the VFS is asked again with it when it makes the file itself (maps names files).
    /// </summary>
    private static PathResolution Rendered(SyscallCall c, PathRequest request, ProcRender render)
    {
        var ask = render.Request with { Stopped = c.Kernel.Tasks.Find(render.HostTid)?.JobStopped == true };
        if (render.HostSource is { } source) ask = ask with { HostText = ProcTextFiles.ReadHost(source) };
        var text = render.Owner switch
        {
            ProcOwner.Sched => c.Kernel.Sched.Call(s => s.ProcTextAsync(ask)),
            ProcOwner.Mm => c.Kernel.Mm.Call(m => m.ProcTextAsync(ask)),
            _ => throw new InvalidOperationException($"no server makes {render.Owner}'s procfs text"),
        };
        if (text.Errno != 0) return new PathResolution(Errno.ENOENT, null, null); // the task ended meanwhile
        if (render.Material is { } material) return new PathResolution(0, c.Kernel.ProcText.Write(material, text.Text, c.Tid), null);
        c.ServerUsed = Server.Vfs;
        var r = c.Kernel.Vfs.Call(v => v.ResolveAsync(request with { Rendered = new ProcRendered(ask.Vpid, ask.Vtid, ask.File, text) }));
        if (r.NeedProcesses || r.Render is not null) throw new InvalidOperationException("the VFS asked twice for the facts of a path");
        return r;
    }

    /// <summary>
    /// The path in argument <paramref name="pathArg"/> as the VFS needs it: the string, and for a relative path
    /// under a dirfd other than AT_FDCWD (any path, when openat2's resolve flags are <paramref name="scoped"/> to it) the host
    /// path of the directory the fd holds (EBADF if it holds none).
    /// Null for "", which only the host can judge against the fd.
    /// </summary>
    private static PathArg? Arg(SyscallCall c, int dirFdArg, int pathArg, bool scoped = false)
    {
        if (c.Arg(pathArg) == 0) throw new SyscallError(Errno.EFAULT);
        string path = c.ReadPath(pathArg);
        if (path.Length == 0) return null;
        int dirFd = dirFdArg == NoDirFd ? LinuxFlags.AT_FDCWD : c.IntArg(dirFdArg);
        if ((path.StartsWith('/') && !scoped) || dirFd == LinuxFlags.AT_FDCWD) return new PathArg(path);
        string dir = FdTarget(c.Tid, dirFd) ?? throw new SyscallError(Errno.EBADF);
        // A removed directory has no names left: Linux's lookup in it is ENOENT (IS_DEADDIR), for every call. Only "."
        // and ".." lead anywhere from it; the VFS cannot walk from it at all (it has no name in the guest's tree).
        if (dir.EndsWith(" (deleted)", StringComparison.Ordinal) && LooksUpAName(path)
            && Interop.IsRemovedDirectory($"/proc/{c.Tid}/fd/{dirFd}"))
            throw new SyscallError(Errno.ENOENT);
        return new PathArg(path, dir);
    }

    /// <summary>Whether a relative path looks a name up in its starting directory: its first component other than
    /// "." is a name (not "..", which leaves the directory, nor nothing at all).</summary>
    private static bool LooksUpAName(string path)
    {
        foreach (var part in path.Split('/'))
        {
            if (part is "" or ".") continue;
            return part != "..";
        }
        return false;
    }

    /// <summary>What a guest fd holds, as the host's /proc says: a host path, or "pipe:[N]" and the like.</summary>
    internal static string? FdTarget(int hostTid, int fd) => fd < 0 ? null : ProcLink($"/proc/{hostTid}/fd/{fd}");

    /// <summary>A link of the host's /proc, or null when the task (or its fd) is gone; its bytes decoded as every path is.</summary>
    private static string? ProcLink(string path) => Interop.ReadLink(path);

    /// <summary>
    /// linkat. Its source may be a file the guest holds open rather than a name: an fd with AT_EMPTY_PATH, or the fd's
    /// link in /proc/self/fd followed (AT_SYMLINK_FOLLOW), which is how an O_TMPFILE file gets its first name.
    /// </summary>
    private static void LinkAt(SyscallCall c)
    {
        int flags = c.IntArg(4);
        if ((flags & ~(LinuxFlags.AT_SYMLINK_FOLLOW | LinuxFlags.AT_EMPTY_PATH)) != 0) throw new SyscallError(Errno.EINVAL);
        var path = Arg(c, 0, 1);
        var newPath = Arg(c, 2, 3);
        if (newPath is not null && path is null && (flags & LinuxFlags.AT_EMPTY_PATH) != 0)
            LinkFd(c, c.IntArg(0), Errno.EBADF, newPath, flags & ~LinuxFlags.AT_EMPTY_PATH);
        else if (newPath is not null && (flags & LinuxFlags.AT_SYMLINK_FOLLOW) != 0 && OwnFdLink(path?.Path) is int fd)
        {
            // The host reads the source string again: it gets the kernel's copy, which a guest thread cannot flip to a
            // host path after the check.
            c.RewritePath(1, $"/proc/self/fd/{fd}");
            LinkFd(c, fd, Errno.ENOENT, newPath, flags & ~LinuxFlags.AT_SYMLINK_FOLLOW);
        }
        else Change(c, NameOp.Link, path, newPath, flags: flags);
    }

    /// <summary>The fd a /proc/self/fd/N (or /proc/thread-self/fd/N) path names, or null for any other path.</summary>
    private static int? OwnFdLink(string? path)
    {
        foreach (var prefix in new[] { "/proc/self/fd/", "/proc/thread-self/fd/" })
            if (path is not null && path.StartsWith(prefix, StringComparison.Ordinal)
                && int.TryParse(path.AsSpan(prefix.Length), System.Globalization.NumberStyles.None, null, out int fd))
                return fd;
        return null;
    }

    private static void Change(SyscallCall c, NameOp op, PathArg? path, PathArg? newPath = null, string? target = null, int flags = 0, bool badFlags = false)
    {
        if (badFlags) throw new SyscallError(Errno.EINVAL);
        if (path is null || (op is NameOp.Rename or NameOp.Link && newPath is null)) throw new SyscallError(Errno.ENOENT);
        c.ServerUsed = Server.Vfs;
        var change = new NameChange(c.Task.Vpid, op, path, SysCreds.Of(c), newPath, target, flags, c.Kernel.Vfs.NextRequestId());
        int errno = c.Kernel.Vfs.Call(v => v.ChangeAsync(change));
        if (errno != 0) throw new SyscallError(errno);
        c.Return(0);
    }

    /// <summary>A symlink's text: EFAULT for a bad pointer, as Linux reads it before the link's own path.</summary>
    private static string Target(SyscallCall c, int i)
    {
        if (c.Arg(i) == 0) throw new SyscallError(Errno.EFAULT);
        return c.ReadPath(i);
    }

    /// <summary>
    /// linkat of the file guest fd <paramref name="fd"/> holds (<paramref name="noFd"/>: the errno when it holds none): a
    /// file with a guest path is linked by the VFS like any other (copied up first when it is in the read-only layer);
    /// one without (an O_TMPFILE file, made in a writable layer) is linked by the host, with the guest's own source (its
    /// fd, or its link in the host's procfs, which the guest's mount namespace has at /proc) and the host path the VFS
    /// gives the new name.
    /// </summary>
    private static void LinkFd(SyscallCall c, int fd, int noFd, PathArg newPath, int flags)
    {
        string target = FdTarget(c.Tid, fd) ?? throw new SyscallError(noFd);
        c.ServerUsed = Server.Vfs;
        string? guest = target.StartsWith('/') && !target.EndsWith(" (deleted)", StringComparison.Ordinal)
            ? c.Kernel.Vfs.Call(v => v.GuestPathAsync(target))
            : null;
        if (guest is not null)
        {
            var change = new NameChange(c.Task.Vpid, NameOp.Link, new PathArg(guest), SysCreds.Of(c), newPath, Flags: flags, RequestId: c.Kernel.Vfs.NextRequestId());
            int errno = c.Kernel.Vfs.Call(v => v.ChangeAsync(change));
            if (errno != 0) throw new SyscallError(errno);
            c.Return(0);
            return;
        }
        Resolve(c, 2, 3, PathOp.Create, follow: false);
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
        c.Kernel.Names?.CwdsChanged();
        if (ProcLink($"/proc/{c.Tid}/cwd") is { } cwd) // null: the task died under us, its cwd no longer matters
            c.Kernel.Vfs.Post(nameof(IVfsServer.SetCwdAsync), c.Task.Vpid, cwd);
    }

    private static void Getcwd(SyscallCall c)
    {
        c.ServerUsed = Server.Vfs;
        var r = c.Kernel.Vfs.Call(v => v.GetCwdAsync(c.Task.Vpid));
        if (r.Errno != 0 || r.Path is null) throw new SyscallError(r.Errno != 0 ? r.Errno : Errno.ENOENT);
        var bytes = PathBytes.EncodeZ(r.Path);
        if ((ulong)bytes.Length > c.Arg(1)) throw new SyscallError(Errno.ERANGE); // Linux checks the size before the buffer
        if (c.Arg(0) == 0) throw new SyscallError(Errno.EFAULT);
        GuestMemory.Write(c.Tid, c.Arg(0), bytes);
        c.Return(bytes.Length);
    }
}
