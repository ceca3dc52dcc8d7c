using System.Text.Json;
using UmlMicro.Contracts.Linux;
using UmlMicro.Contracts.Servers;
using UmlMicro.Servers.Vfs.Layers;
using UmlMicro.Servers.Vfs.Native;

namespace UmlMicro.Servers.Vfs;

/// <summary>
/// The VFS server: the guest's namespace (mounts: a copy-on-write root over a read-only host tree, bind mounts,
/// tmpfs, procfs, devfs), path resolution that never leaves the guest root, the namespace changes that must keep
/// the layers in step (unlink, rmdir, rename, link, symlink), and each process's cwd. It turns the paths a guest
/// names into the host paths the host must be given.
/// <para>
/// Rebuilding after a crash: the mounts come from vfs/configure; the upper layer is on disk and the whiteouts and
/// opaque directories are read back from its journal (OverlayMount); snapshots and generated /proc files are
/// caches, made again on the next walk. What only events can restore is each live process's cwd: a restarted
/// server is given vfs/configure (pid 1 in the initial cwd), then the vfs/process_created, vfs/set_cwd and
/// vfs/process_exited events in the order the supervisor saw them. Processes that share a cwd (CLONE_FS) must be
/// recreated with shareFs from one of them.
/// </para>
/// <para>
/// Permissions: every request carries the caller's credentials, and the walk and every change are checked with them
/// as Linux checks them (<see cref="Permissions"/>, <see cref="Change"/>): the VFS acts on the host with more rights
/// than the guest thread it acts for.
/// </para>
/// <para>
/// Leases (PathResolution.Lease): an answer that names an existing object of a host-backed mount by its own host path,
/// or says a name is missing from a directory of one, to a question that changes nothing, is granted (for the
/// credentials it was asked with) for
/// <see cref="Namei.Lifetime"/>. Every request that may change the
/// namespace (a change, a create, a copy-up, a commit) revokes them all first, and the walk's directory cache with
/// them. Started with --no-leases, the server grants none and sees every lookup.
/// </para>
/// </summary>
internal sealed partial class VfsServer : KernelServerBase, IVfsServer, IDisposable
{
    private const int InitPid = 1;
    private const int S_IFMT = 0xF000, S_IFCHR = 0x2000, S_IFBLK = 0x6000;
    private const int O_TMPFILE = 0x410000; // __O_TMPFILE | O_DIRECTORY

    // Requests are serialised: the server is a single-threaded kernel, one message at a time, as in MINIX.
    private readonly Lock gate = new();
    private readonly CwdTable cwds = new();
    private readonly ProcContext proc = new();
    private MountTable mounts = new();
    private Namei namei = null!;
    private Permissions permissions = new();
    private Snapshots snapshots = null!;
    private KernelFiles? kernelFiles;
    private MadeObjects madeLinks = null!;
    private ChangeJournal? changes;
    private Xattrs xattrs = null!;
    private VfsConfig? configured;
    private string stateDir = "/nonexistent", memoryDir = "";
    private readonly Dictionary<string, string> execLinks = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> links = new(StringComparer.Ordinal);
    private readonly bool grantLeases;
    private LeaseEpoch? epoch;

    public VfsServer(bool grantLeases = true) : base(Contract.VfsName, Contract.VfsVersion)
    {
        this.grantLeases = grantLeases;
    }

    private sealed record Checkpoint(VfsConfig Config, IReadOnlyList<CwdTable.Saved> Cwds);

    /// <summary>A checkpoint's JSON, generated at compile time (the server is a NativeAOT executable).</summary>
    [System.Text.Json.Serialization.JsonSerializable(typeof(Checkpoint))]
    private sealed partial class CheckpointJson : System.Text.Json.Serialization.JsonSerializerContext;

    /// <summary>The configuration and the cwds: all the rest is on disk (the layers, the whiteout journal, what
    /// the server made in its state directory) and is read back by configuring again.</summary>
    public override Task<string?> CheckpointAsync()
    {
        lock (gate)
            return Task.FromResult(configured is null ? null : JsonSerializer.Serialize(new Checkpoint(configured, cwds.Save()), CheckpointJson.Default.Checkpoint));
    }

    public override async Task RestoreAsync(string checkpoint)
    {
        var saved = ReadCheckpoint(checkpoint, CheckpointJson.Default.Checkpoint);
        lock (gate)
            if (configured is not null) throw ProtocolViolation.Of("a checkpoint is restored into a fresh server only");
        await ConfigureAsync(saved.Config ?? throw NotACheckpoint("no configuration"));
        lock (gate)
        {
            try
            {
                cwds.Load(saved.Cwds ?? []);
            }
            catch (ArgumentException e)
            {
                throw NotACheckpoint(e.Message);
            }
        }
    }

    public Task ConfigureAsync(VfsConfig config)
    {
        if (config.Mounts is not { Count: > 0 } specs || specs[0].GuestPath != "/")
            throw ProtocolViolation.Of("the first mount must be the root");
        string state = HostDir(config.StateDir, "state directory");
        string memory = HostDir(config.MemoryDir, "memory directory");
        string upper = config.UpperDir is { Length: > 0 } u ? Path.GetFullPath(u) : Path.Combine(state, "upper");
        string initCwd = AbsolutePath(config.InitialCwd, "initial cwd");
        lock (gate)
        {
            // Everything is built first: a configure that is refused leaves the server as it was.
            var table = new MountTable();
            int tmpfs = 0;
            foreach (var spec in specs)
            {
                string point = AbsolutePath(spec.GuestPath, "mount point");
                table.Add(spec.Kind switch
                {
                    "overlay" when point == "/" => new OverlayMount("/", HostDir(spec.Source, "root"), upper,
                        config.UpperDir is { Length: > 0 } ? Path.Combine(upper, OverlayMount.JournalName) : Path.Combine(state, "whiteouts"),
                        [state, memory, upper]),
                    "bind" => new HostMount(point, HostDir(spec.Source, $"source of {point}"), spec.ReadOnly, "hostfs"),
                    "tmpfs" => new HostMount(point, TmpfsRoot(Path.Combine(memory, $"tmpfs{++tmpfs}")), spec.ReadOnly, "tmpfs"),
                    // Generated text lives in memory (tmpfs): it is written at every open of such a file.
                    "proc" => new ProcFs(proc, table, GuestPathOf, cwds.GuestOf, Directory.CreateDirectory(Path.Combine(memory, "proc")).FullName),
                    "dev" => new DevFs(point),
                    _ => throw ProtocolViolation.Of($"cannot mount a {spec.Kind} at {point}"),
                });
            }
            var perms = new Permissions(config.OnlyUid, config.OnlyGid, Permissions.HostProtectsHardlinks());
            var walker = new Namei(table, perms);
            proc.Processes = null;
            var start = walker.Walk("/", initCwd, followLast: true);
            if (start.Errno != 0 || start.Node.Type != NodeType.Directory)
                throw ProtocolViolation.Of($"the initial cwd {initCwd} is not a directory of the guest");
            mounts = table;
            namei = walker;
            permissions = perms;
            snapshots = new Snapshots(Directory.CreateDirectory(Path.Combine(state, "snapshots")).FullName);
            madeLinks = RecallLinks(Path.Combine(state, "links"));
            changes?.Dispose();
            changes = new ChangeJournal(Path.Combine(state, "change"));
            xattrs = new Xattrs(Path.Combine(state, "xattrs"));
            stateDir = state;
            memoryDir = memory;
            kernelFiles = new KernelFiles(Path.Combine(state, "kernel"), config.Release ?? "", config.Hostname ?? "", config.Cpus, config.MemoryLimit);
            cwds.Reset(InitPid, start.GuestPath, Readable(start));
            epoch?.Dispose();
            epoch = LeaseEpoch.Open(config.LeaseEpoch, grantLeases);
            configured = config;
        }
        return Task.CompletedTask;
    }

    public Task ProcessCreatedAsync(int parentVpid, int childVpid, bool shareFs)
    {
        lock (gate)
        {
            if (!cwds.Contains(parentVpid)) throw ProtocolViolation.Of($"no process {parentVpid}");
            if (cwds.Contains(childVpid)) throw ProtocolViolation.Of($"process {childVpid} already exists");
            cwds.Fork(parentVpid, childVpid, shareFs);
        }
        return Task.CompletedTask;
    }

    public Task ProcessExitedAsync(int vpid)
    {
        lock (gate)
        {
            if (!cwds.Contains(vpid)) throw ProtocolViolation.Of($"no process {vpid}");
            cwds.Exit(vpid);
        }
        return Task.CompletedTask;
    }

    public Task<PathResolution> ResolveAsync(PathRequest request)
    {
        if (request.Arg?.Path is null) throw ProtocolViolation.Of("a path request without a path");
        if (request.Creds?.Groups is null) throw ProtocolViolation.Of("a path request without credentials");
        lock (gate)
        {
            Configured();
            proc.Vpid = request.Vpid;
            proc.Vtid = request.Vtid;
            proc.Processes = request.Processes;
            proc.Rendered = request.Rendered;
            changed = false;
            try
            {
                var answer = Resolve(request, out bool leasable);
                return Task.FromResult(leasable && IsLookup(request) && epoch is not null && answer.Errno is 0 or Errno.ENOENT
                    ? answer with { Lease = epoch.Current, LeaseMs = (int)Namei.Lifetime.TotalMilliseconds }
                    : answer);
            }
            catch (NeedProcessesException)
            {
                return Task.FromResult(new PathResolution(0, null, null, NeedProcesses: true));
            }
            catch (NeedRenderException need)
            {
                // It names a task of the request's list and the host file of its text, never the text: it holds while
                // the namespace and that list do (the supervisor asks the same thread's same question with the same list).
                var render = new PathResolution(0, null, null, Render: need.Render);
                return Task.FromResult(IsLookup(request) && request.Processes is not null && epoch is not null && !changed
                    ? render with { Lease = epoch.Current, LeaseMs = (int)Namei.Lifetime.TotalMilliseconds }
                    : render);
            }
            finally
            {
                proc.Rendered = null; // the text of one request: a later one must not see it
                if (changed) namei.Forget(); // the walk kept what the change then changed
            }
        }
    }

    /// <summary>ENOENT for a name missing from a directory the walk reached: leasable like any other answer of a
    /// cacheable mount (the supervisor keeps such a lease only until a call that may make a name has ended).</summary>
    private static PathResolution Missing(in Walked w, out bool leasable)
    {
        leasable = w.Stable;
        return Fail(Errno.ENOENT);
    }

    /// <summary>A question that changes nothing: no create, no write, no copy-up.</summary>
    private static bool IsLookup(PathRequest request) => request.Op switch
    {
        PathOp.Stat or PathOp.Access or PathOp.Readlink or PathOp.Chdir or PathOp.Lookup or PathOp.Exec => true,
        PathOp.Open => (request.OpenFlags & (LinuxFlags.O_ACCMODE | LinuxFlags.O_CREAT | LinuxFlags.O_TRUNC)) == 0
            && (request.OpenFlags & O_TMPFILE) != O_TMPFILE, // O_TMPFILE includes O_DIRECTORY, which opendir sets
        _ => false,
    };

    /// <summary>A resolve that changes the namespace (a create, a copy-up) has revoked the leases: see <see cref="Revoking"/>.</summary>
    private bool changed;

    /// <summary>A resolve is about to change the namespace (a create, a copy-up): every lease is void from now on, and
    /// the walk's kept directories are forgotten when the answer goes. A create the host carries out after the answer
    /// voids the supervisor's leases on missing names itself (PathResolution.MakesName).</summary>
    private void Revoking()
    {
        epoch?.Revoke();
        changed = true;
    }

    /// <summary>
    /// Runs a change the VFS carries out itself (vfs/change, vfs/created): every lease is void before the change can be
    /// seen, and every directory the walk kept is forgotten after it, since the change's own walk kept what it then
    /// changed.
    /// </summary>
    private T Changing<T>(Func<T> change)
    {
        epoch?.Revoke();
        namei.Forget();
        try
        {
            return change();
        }
        finally
        {
            namei.Forget();
        }
    }

    /// <param name="leasable">The answer names an existing object of a cacheable mount by its own host path: it stays
    /// right until the namespace changes.</param>
    private PathResolution Resolve(PathRequest request, out bool leasable)
    {
        leasable = false;
        if (request.Xattr is { Fd: { } fd } byFd) return FdXattr(request, byFd, fd);
        string path = request.Arg.Path;
        var creds = request.Creds;
        int errno = Walk(request.Vpid, request.Arg, request.FollowLast, creds, out var w, out string baseHost, request.Resolve);
        if (errno != 0) return Fail(errno);
        if (request.Xattr is { } xattr) return Xattr(request, xattr, w);
        var node = w.Node;
        int flags = request.OpenFlags;
        bool write = request.Op == PathOp.Open && ((flags & LinuxFlags.O_ACCMODE) != 0 || (flags & LinuxFlags.O_TRUNC) != 0);
        if (kernelFiles!.Lookup(w.GuestPath, write || request.Op == PathOp.Modify, out int denied) is { } kernelFile)
            return denied != 0 ? Fail(denied) : Answer(path, baseHost, kernelFile, w.GuestPath);

        if (node.Layer == Layer.Magic && (write || request.Op == PathOp.Modify) && node.LinkText is { } through && !OpenForWriting(node.HostPath!))
        {
            // Reopening for writing an fd that was opened read-only: that must not reach the host's file behind
            // it; it goes by the file's guest path, where a read-only layer is copied up first.
            w = namei.Walk("/", through, followLast: false);
            if (w.Errno != 0) return Fail(w.Errno);
            node = w.Node;
        }
        string host;
        bool commit = false, makes = false;
        switch (request.Op)
        {
            case PathOp.Open when !node.Exists:
                if ((flags & LinuxFlags.O_CREAT) == 0) return Missing(w, out leasable);
                if (path.EndsWith('/')) return Fail(Errno.EISDIR);
                if (MayCreate(w, creds) is var refused and not 0) return Fail(refused);
                Revoking();
                errno = w.Mount.PrepareCreate(w.Rel, node, out host, out commit);
                makes = true;
                break;
            case PathOp.Create when node.Exists:
                return Fail(Errno.EEXIST);
            case PathOp.Create:
                if (MayCreate(w, creds) is var refusal and not 0) return Fail(refusal);
                if ((flags & S_IFMT) is S_IFCHR or S_IFBLK) return Fail(Errno.EPERM); // no host devices for a guest (after may_create, as vfs_mknod)
                Revoking();
                errno = w.Mount.PrepareCreate(w.Rel, node, out host, out commit);
                makes = true;
                break;
            case PathOp.Open when (flags & (LinuxFlags.O_CREAT | LinuxFlags.O_EXCL)) == (LinuxFlags.O_CREAT | LinuxFlags.O_EXCL):
                return Fail(Errno.EEXIST);
            case PathOp.Open when write && node.Type == NodeType.Directory && (flags & O_TMPFILE) != O_TMPFILE:
                return Fail(Errno.EISDIR);
            case PathOp.Open when write:
            case PathOp.Modify when node.Exists:
                // The host judges the open of the copy, but the copy must not be made for a caller who may not write.
                if (request.Op == PathOp.Open && w.Mount.WriteChangesNames(node) && w.Mount.ChecksPermissions
                    && permissions.Check(creds, node, LinuxFlags.MAY_WRITE | ((flags & LinuxFlags.O_ACCMODE) == LinuxFlags.O_WRONLY ? 0 : LinuxFlags.MAY_READ)) is var no and not 0)
                    return Fail(no);
                if (w.Mount.WriteChangesNames(node)) Revoking();
                errno = w.Mount.PrepareWrite(w.Rel, node, truncate: request.Op == PathOp.Open && (flags & LinuxFlags.O_TRUNC) != 0 && node.Type == NodeType.File, out host);
                break;
            case PathOp.Access when node.Exists && (flags & HostFs.W_OK) != 0 && w.Mount.ReadOnly:
                return Fail(Errno.EROFS);
            case var _ when !node.Exists:
                return Missing(w, out leasable);
            case PathOp.Exec:
                host = Readable(w);
                if (Answer(path, baseHost, host, w.GuestPath).HostPath is not null && Shebang(host) is var (interpreter, arg))
                    return Interpret(request, w, interpreter, arg);
                host = ExecName(host, LastComponent(path), w.GuestPath);
                break;
            default:
                host = Readable(w);
                leasable = w.Stable && node.Layer is Layer.Host or Layer.Upper or Layer.Lower && host == node.HostPath;
                break;
        }
        if (errno != 0) return Fail(errno);
        if (PathBytes.ByteCount(host) >= LinuxFlags.PATH_MAX) return Fail(Errno.ENAMETOOLONG);
        return Answer(path, baseHost, host, w.GuestPath) with { CommitOnSuccess = commit, MakesName = makes };
    }

    /// <summary>
    /// An extended-attribute call of the kept namespaces (see <see cref="Xattrs"/>) on the walked object: a change is
    /// made on the copy-on-write layer's copy, made first (as overlayfs copies up before it sets an attribute), and a
    /// read-only mount refuses it (EROFS, before any permission). What the kernel makes up (procfs) has no attributes,
    /// as Linux's procfs has no handler for them: EOPNOTSUPP, and an empty list.
    /// </summary>
    private PathResolution Xattr(PathRequest request, XattrCall call, in Walked w)
    {
        var node = w.Node;
        if (!node.Exists) return Fail(Errno.ENOENT);
        // A host magic link (/proc/PID/fd/N of a pipe) is walked to, never through: followed, it is the fd's inode.
        bool follow = node.Layer == Layer.Magic && request.FollowLast;
        if (node.HostPath is not { } host || node.Layer == Layer.Synthetic || (node.Layer == Layer.Magic && !follow)
            || kernelFiles!.Lookup(w.GuestPath, write: false, out _) is not null)
            return call.Op == XattrOp.List ? new PathResolution(0, null, w.GuestPath, Xattr: new XattrResult(0)) : Fail(Errno.EOPNOTSUPP);
        if (call.Op is XattrOp.Set or XattrOp.Remove)
        {
            if (w.Mount.ReadOnly) return Fail(Errno.EROFS);
            if (Xattrs.Refuses(call, request.Creds) is var refused and not 0) return Fail(refused);
            if (w.Mount.WriteChangesNames(node)) Revoking();
            int errno = w.Mount.PrepareWrite(w.Rel, node, truncate: false, out host);
            if (errno != 0) return Fail(errno);
        }
        int answer = xattrs.Call(call, request.Creds, host, follow, out var result);
        return answer != 0 ? Fail(answer) : new PathResolution(0, null, w.GuestPath, Xattr: result);
    }

    /// <summary>
    /// An extended-attribute call on the file a guest fd holds (<see cref="XattrCall.Fd"/>, the host's /proc/TID/fd/N): a
    /// file of the guest's namespace is the one its name leads to now (on the copy-on-write root, the copy once one is
    /// made, as an overlayfs file is its inode and not a layer's); anything else (a pipe, an unlinked file) is the fd's
    /// own inode.
    /// </summary>
    private PathResolution FdXattr(PathRequest request, XattrCall call, string fd)
    {
        if (!IsFdLink(fd)) throw ProtocolViolation.Of($"an fd's link must be /proc/TID/fd/N, not '{fd}'");
        if (HostFs.ReadLink(fd) is { } target && target.StartsWith('/') && GuestPathOf(target) is { } guest)
        {
            var w = namei.Walk("/", guest, followLast: false);
            if (w.Errno == 0 && w.Node.Exists && (w.Node.HostPath == target || w.Node.Layer is Layer.Lower or Layer.Upper))
                return Xattr(request with { FollowLast = false }, call, w);
        }
        int answer = xattrs.Call(call, request.Creds, fd, follow: true, out var result);
        return answer != 0 ? Fail(answer) : new PathResolution(0, null, null, Xattr: result);
    }

    private static bool IsFdLink(string path)
    {
        var parts = path.Split('/');
        return parts is ["", "proc", var tid, "fd", var n] && tid.Length > 0 && n.Length > 0 && tid.All(char.IsAsciiDigit) && n.All(char.IsAsciiDigit);
    }

    /// <summary>The identity of the inode whose last name removing <paramref name="node"/> takes, or null when it has
    /// others (or is no host object): its kept attributes go with that name.</summary>
    private static string? LastName(in Node node) =>
        node.Layer is Layer.Host or Layer.Upper && node.HostPath is { } host && HostFs.Inode(host, follow: false, out var inode) == 0
            && (node.Type == NodeType.Directory || inode.Nlink <= 1) ? inode.Key : null;

    /// <summary>may_create for a name the walk found missing: EROFS on a read-only mount (mnt_want_write comes first),
    /// then write and search permission on the directory it would be made in.</summary>
    private int MayCreate(in Walked w, Credentials creds)
    {
        if (w.Mount.ReadOnly) return Errno.EROFS;
        return w.Mount.ChecksPermissions ? permissions.Create(creds, w.Dir) : 0;
    }

    /// <summary>A call that changed an object's attributes has ended: walks kept by directory are forgotten, since who may
    /// search them may have changed.</summary>
    public Task AttributesChangedAsync()
    {
        lock (gate)
        {
            Configured();
            namei.Forget();
        }
        return Task.CompletedTask;
    }

    public Task CreatedAsync(string guestPath)
    {
        lock (gate)
        {
            Configured();
            var (mount, rel) = mounts.Find(AbsolutePath(guestPath, "created path"));
            Changing(() =>
            {
                mount.Created(rel);
                return 0;
            });
        }
        return Task.CompletedTask;
    }

    public Task<int> ChangeAsync(NameChange change)
    {
        if (change?.Path?.Path is null) throw ProtocolViolation.Of("a change without a path");
        if (change.Creds?.Groups is null) throw ProtocolViolation.Of("a change without credentials");
        lock (gate)
        {
            Configured();
            proc.Vpid = change.Vpid;
            proc.Processes = null;
            try
            {
                return Task.FromResult(Changing(() => changes!.Apply(change.RequestId, change.Op, () => Change(change))));
            }
            catch (NeedProcessesException)
            {
                return Task.FromResult(Errno.EACCES); // names under /proc/PID cannot be changed anyway
            }
        }
    }

    /// <summary>
    /// A namespace change, with Linux's checks in Linux's order (do_unlinkat, do_rmdir, do_symlinkat, do_linkat,
    /// do_renameat2 and the may_create/may_delete they call): the walk to the parent (search permission on the way), the
    /// kind of last name, a read-only mount, the names themselves, then the caller's permissions, then the types.
    /// </summary>
    private int Change(NameChange c)
    {
        var creds = c.Creds;
        switch (c.Op)
        {
            case NameOp.Unlink:
            case NameOp.Rmdir:
                return Remove(c, creds, directory: c.Op == NameOp.Rmdir);
            case NameOp.Symlink:
                return MakeSymlink(c, creds);
        }
        if (c.NewPath is null) throw ProtocolViolation.Of($"{c.Op} without a new path");
        return c.Op == NameOp.Link ? MakeLink(c, creds) : Rename(c, creds);
    }

    private int Remove(NameChange c, Credentials creds, bool directory)
    {
        int errno = WalkParent(c.Vpid, c.Path, creds, out var p);
        if (errno != 0) return errno;
        if (p.Kind != LastKind.Name)
            return !directory ? Errno.EISDIR : p.Kind switch { LastKind.Dot => Errno.EINVAL, LastKind.DotDot => Errno.ENOTEMPTY, _ => Errno.EBUSY };
        if (p.Dir.Mount.ReadOnly) return Errno.EROFS;
        var v = p.Child;
        if (!v.Node.Exists) return Errno.ENOENT;
        if (!directory && p.Trailing) return v.Node.Type == NodeType.Directory ? Errno.EISDIR : Errno.ENOTDIR;
        if (MayDelete(p, v, creds) is var denied and not 0) return denied;
        if (directory && v.Node.Type != NodeType.Directory) return Errno.ENOTDIR;
        if (!directory && v.Node.Type == NodeType.Directory) return Errno.EISDIR;
        if (v.Rel.Length == 0) return Errno.EBUSY; // a mount point
        string? last = LastName(v.Node);
        errno = v.Mount.Remove(v.Rel, v.Node, directory);
        if (errno == 0 && last is not null) xattrs.Forget(last);
        return errno;
    }

    private int MakeSymlink(NameChange c, Credentials creds)
    {
        if (string.IsNullOrEmpty(c.Target)) return Errno.ENOENT; // the target is read first
        int errno = NewName(c.Vpid, c.Path, creds, out var p);
        if (errno != 0) return errno;
        errno = p.Child.Mount.Symlink(c.Target, p.Child.Rel, p.Child.Node);
        // The VFS made it: it belongs to the caller, as a link the caller made itself would.
        if (errno == 0 && p.Child.Mount.Lookup(p.Child.Rel).HostPath is { } made)
            HostFs.Lchown(made, creds.Uid, Permissions.NewGroup(creds, p.Dir.Node));
        return errno;
    }

    /// <summary>filename_create, then may_create: the name must be a plain one that does not exist (EEXIST), without a
    /// trailing slash (ENOENT), on a writable mount (EROFS), in a directory the caller may write and search (EACCES).</summary>
    private int NewName(int vpid, PathArg arg, Credentials creds, out Parented p)
    {
        int errno = WalkParent(vpid, arg, creds, out p);
        if (errno != 0) return errno;
        if (p.Kind != LastKind.Name || p.Child.Node.Exists) return Errno.EEXIST;
        if (p.Trailing) return Errno.ENOENT;
        if (p.Dir.Mount.ReadOnly) return Errno.EROFS;
        return p.Dir.Mount.ChecksPermissions ? permissions.Create(creds, p.Dir.Node) : 0;
    }

    private int MakeLink(NameChange c, Credentials creds)
    {
        bool follow = (c.Flags & LinuxFlags.AT_SYMLINK_FOLLOW) != 0;
        int errno = Walk(c.Vpid, c.Path, follow, creds, out var from, out _);
        if (errno != 0) return errno;
        if (!from.Node.Exists) return Errno.ENOENT;
        errno = WalkParent(c.Vpid, c.NewPath!, creds, out var p);
        if (errno != 0) return errno;
        if (p.Kind != LastKind.Name || p.Child.Node.Exists) return Errno.EEXIST;
        if (p.Trailing) return Errno.ENOENT;
        if (p.Dir.Mount.ReadOnly) return Errno.EROFS;
        if (p.Dir.Mount != from.Mount) return Errno.EXDEV;
        if (from.Mount.ChecksPermissions)
        {
            if (permissions.Link(creds, from.Node) is var unsafeSource and not 0) return unsafeSource;
            if (permissions.Create(creds, p.Dir.Node) is var denied and not 0) return denied;
        }
        if (from.Node.Type == NodeType.Directory) return Errno.EPERM;
        return p.Child.Mount.Link(from.Rel, from.Node, p.Child.Rel, p.Child.Node);
    }

    private int Rename(NameChange c, Credentials creds)
    {
        uint flags = (uint)c.Flags;
        bool exchange = (flags & HostFs.RENAME_EXCHANGE) != 0, noReplace = (flags & HostFs.RENAME_NOREPLACE) != 0;
        int errno = WalkParent(c.Vpid, c.Path, creds, out var o);
        if (errno != 0) return errno;
        errno = WalkParent(c.Vpid, c.NewPath!, creds, out var n);
        if (errno != 0) return errno;
        if (o.Dir.Mount != n.Dir.Mount) return Errno.EXDEV;
        if (o.Kind != LastKind.Name) return Errno.EBUSY;
        if (n.Kind != LastKind.Name) return noReplace ? Errno.EEXIST : Errno.EBUSY;
        if (o.Dir.Mount.ReadOnly) return Errno.EROFS;
        var w = o.Child;
        var to = n.Child;
        if (!w.Node.Exists) return Errno.ENOENT;
        if (noReplace && to.Node.Exists) return Errno.EEXIST;
        if (exchange)
        {
            if (!to.Node.Exists) return Errno.ENOENT;
            if (to.Node.Type != NodeType.Directory && n.Trailing) return Errno.ENOTDIR;
        }
        bool isDir = w.Node.Type == NodeType.Directory, newIsDir = to.Node.Type == NodeType.Directory;
        if (!isDir && (o.Trailing || (!exchange && n.Trailing))) return Errno.ENOTDIR;
        // One may not be an ancestor of the other (lock_rename's trap).
        if (Under(n.Dir.GuestPath, w.GuestPath)) return Errno.EINVAL;
        if (to.Node.Exists && Under(o.Dir.GuestPath, to.GuestPath)) return exchange ? Errno.EINVAL : Errno.ENOTEMPTY;
        // vfs_rename: a name renamed onto itself is done, before any permission is asked.
        if (to.GuestPath == w.GuestPath) return 0;
        if (MayDelete(o, w, creds) is var denied and not 0) return denied;
        if (!to.Node.Exists)
        {
            if (n.Dir.Mount.ChecksPermissions && permissions.Create(creds, n.Dir.Node) is var refused and not 0) return refused;
        }
        else
        {
            if (MayDelete(n, to, creds) is var refused and not 0) return refused;
            bool victimMustBeDir = exchange ? newIsDir : isDir;
            if (victimMustBeDir && !newIsDir) return Errno.ENOTDIR;
            if (!victimMustBeDir && newIsDir) return Errno.EISDIR;
        }
        if (o.Dir.GuestPath != n.Dir.GuestPath && w.Mount.ChecksPermissions)
        {
            // A directory that changes parent has its ".." rewritten: it must be writable itself.
            if (isDir && permissions.Check(creds, w.Node, LinuxFlags.MAY_WRITE) is var no and not 0) return no;
            if (exchange && newIsDir && permissions.Check(creds, to.Node, LinuxFlags.MAY_WRITE) is var none and not 0) return none;
        }
        if (w.Rel.Length == 0 || to.Rel.Length == 0) return Errno.EBUSY; // mount points
        string? replaced = to.Node.Exists && !exchange ? LastName(to.Node) : null;
        int renamed = w.Mount.Rename(w.Rel, w.Node, to.Rel, to.Node, flags);
        if (renamed == 0 && replaced is not null) xattrs.Forget(replaced);
        if (renamed == 0 && isDir)
        {
            // A cwd is a directory, not a name (Linux's fs_struct holds the dentry): processes in or under the
            // renamed one are where they were, under its new name; with RENAME_EXCHANGE the other one moves too.
            cwds.Renamed(w.GuestPath, to.GuestPath, exchange && newIsDir);
        }
        return renamed;
    }

    /// <summary>may_delete's permission part: write and search on the directory, then the sticky bit.</summary>
    private int MayDelete(in Parented p, in Walked victim, Credentials creds) =>
        p.Dir.Mount.ChecksPermissions ? permissions.Delete(creds, p.Dir.Node, victim.Node) : 0;

    /// <summary>Whether guest path <paramref name="path"/> is <paramref name="dir"/> or below it.</summary>
    private static bool Under(string path, string dir) =>
        path == dir || dir == "/" || path.StartsWith(dir + "/", StringComparison.Ordinal);

    private enum LastKind
    {
        Name,
        Dot,
        DotDot,
        /// <summary>The path is "/" (or only slashes): no last name at all.</summary>
        Root,
    }

    /// <summary>A walk to the directory that holds a path's last name (<see cref="Dir"/>), and that name looked up
    /// there without being followed (<see cref="Child"/>, for a plain name). <see cref="Trailing"/>: the path ended in
    /// "/" after the name.</summary>
    private readonly record struct Parented(Walked Dir, LastKind Kind, bool Trailing, Walked Child);

    /// <summary>filename_parentat and the lookup of the last name: search permission is checked on every directory on
    /// the way, the parent included (Linux checks it before it looks at the last name).</summary>
    private int WalkParent(int vpid, PathArg arg, Credentials creds, out Parented parented)
    {
        parented = default;
        if (PathWalk.Check(arg.Path) is var bad and not 0) return bad;
        string path = Aliased(arg.Path);
        arg = arg with { Path = path };
        string trimmed = path.TrimEnd('/');
        if (trimmed.Length == 0 && path.StartsWith('/'))
        {
            int rootErrno = Walk(vpid, arg with { Path = "/" }, followLast: true, creds, out var root, out _);
            if (rootErrno != 0) return rootErrno;
            parented = new Parented(root, LastKind.Root, false, default);
            return 0;
        }
        int slash = trimmed.LastIndexOf('/');
        string last = trimmed[(slash + 1)..];
        string dirPath = slash < 0 ? "." : trimmed[..(slash + 1)];
        int errno = Walk(vpid, arg with { Path = dirPath }, followLast: true, creds, out var dir, out _);
        if (errno != 0) return errno;
        if (!dir.Node.Exists) return Errno.ENOENT;
        if (dir.Node.Type != NodeType.Directory) return Errno.ENOTDIR;
        if (dir.Mount.ChecksPermissions && permissions.Search(creds, dir.Node) is var denied and not 0) return denied;
        var kind = last switch { "." => LastKind.Dot, ".." => LastKind.DotDot, _ => LastKind.Name };
        parented = new Parented(dir, kind, trimmed.Length < path.Length, kind == LastKind.Name ? namei.Child(dir, last) : default);
        return 0;
    }

    public Task<CwdResult> GetCwdAsync(int vpid)
    {
        lock (gate)
        {
            Configured();
            if (!cwds.TryGet(vpid, out string guest, out _)) return Task.FromResult(new CwdResult(Errno.ESRCH, null));
            // A cwd that was removed has no path any more: Linux's getcwd says ENOENT.
            proc.Processes = null;
            try
            {
                var w = namei.Walk("/", guest, followLast: false);
                if (w.Errno != 0 || w.Node.Type != NodeType.Directory) return Task.FromResult(new CwdResult(Errno.ENOENT, null));
            }
            catch (NeedProcessesException)
            {
                // A cwd inside /proc/PID: it is there as long as the process is.
            }
            return Task.FromResult(new CwdResult(0, guest));
        }
    }

    public Task SetCwdAsync(int vpid, string hostPath)
    {
        if (hostPath is null || !hostPath.StartsWith('/')) throw ProtocolViolation.Of($"the cwd must be an absolute host path, not '{hostPath}'");
        lock (gate)
        {
            Configured();
            if (!cwds.Contains(vpid)) throw ProtocolViolation.Of($"no process {vpid}");
            cwds.Set(vpid, GuestPathOf(hostPath) ?? "/", hostPath);
        }
        return Task.CompletedTask;
    }

    public Task<string?> GuestPathAsync(string hostPath)
    {
        lock (gate)
        {
            Configured();
            return Task.FromResult(hostPath is null ? null : GuestPathOf(hostPath));
        }
    }

    /// <summary>Walks a path the guest named, from its cwd or the directory its dirfd holds.</summary>
    /// <param name="resolve">openat2's resolve flags; BENEATH and IN_ROOT are scoped to the dirfd's directory (the supervisor
    /// sends it for an absolute path too), or the cwd.</param>
    private int Walk(int vpid, PathArg arg, bool followLast, Credentials creds, out Walked walked, out string baseHost, int resolve = 0)
    {
        walked = default;
        baseHost = "";
        if (!cwds.TryGet(vpid, out string start, out baseHost)) return Errno.ESRCH;
        int errno = PathWalk.Check(arg.Path);
        if (errno != 0) return errno;
        var scope = new Scope(resolve, "");
        if ((!arg.Path.StartsWith('/') || scope.Scoped) && arg.DirHostPath is { } dirHost)
        {
            // The dirfd's directory, as the guest knows it; one that is not in the guest's namespace (or not a
            // directory) cannot be walked from.
            if (GuestPathOf(dirHost) is not { } dirGuest) return dirHost.StartsWith('/') ? Errno.EACCES : Errno.ENOTDIR;
            var dir = namei.Walk("/", dirGuest, followLast: false);
            if (dir.Errno != 0) return dir.Errno;
            if (dir.Node.Type != NodeType.Directory) return Errno.ENOTDIR;
            (start, baseHost) = (dir.GuestPath, dirHost);
        }
        string path = Aliased(arg.Path);
        walked = namei.Walk(start, path, followLast, creds, scope with { Root = start });
        return walked.Errno;
    }

    /// <summary>A host path the kernel handed out itself (the host passes an exec'd script's path to its interpreter)
    /// means the guest path it stands for.</summary>
    private string Aliased(string path) =>
        path.StartsWith(stateDir, StringComparison.Ordinal) && path.Length > stateDir.Length && path[stateDir.Length] == '/'
            && GuestPathOf(path) is { } alias ? alias : path;

    /// <summary>The host object that reads as the walked node: a snapshot for a directory whose host listing is not
    /// the guest's, a generated file or link for a synthetic node, else the node's own host path.</summary>
    private string Readable(Walked w)
    {
        var node = w.Node;
        if (node.Type == NodeType.Directory && node.NeedsMerge)
        {
            // Listed only when the snapshot has to be made: a listing merges both layers with a probe per name, and
            // a directory that did not change since its last snapshot is read through that one.
            return snapshots.For(w.Mount, w.Rel, w.GuestPath, node, () =>
            {
                var entries = w.Mount.List(w.Rel).ToList();
                var present = entries.Select(e => e.Name).ToHashSet(StringComparer.Ordinal);
                foreach (var name in mounts.ChildMountNames(w.GuestPath))
                    if (present.Add(name)) entries.Add(new DirEntry(name, NodeType.Directory));
                return entries;
            });
        }
        if (node.Type == NodeType.Symlink && node.Layer is Layer.Synthetic or Layer.Magic && node.LinkText is { } text)
        {
            // One host link per text: /proc/self/exe is read over and over, and a link never changes.
            if (links.TryGetValue(text, out var made)) return made;
            string link = madeLinks.New("", null);
            HostFs.Symlink(text, link);
            links[text] = link;
            return link;
        }
        if (node.HostPath is { } host) return host;
        return w.Mount.Materialize(w.Rel, node);
    }

    /// <summary>Whether the fd behind a host /proc/PID/fd/N link was opened for writing (its fdinfo flags).</summary>
    private static bool OpenForWriting(string fdLink)
    {
        try
        {
            string info = File.ReadAllText(fdLink.Replace("/fd/", "/fdinfo/", StringComparison.Ordinal));
            string? flags = info.Split('\n').FirstOrDefault(l => l.StartsWith("flags:", StringComparison.Ordinal));
            return flags is not null && (Convert.ToInt32(flags[6..].Trim(), 8) & LinuxFlags.O_ACCMODE) != 0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            return false;
        }
    }

    /// <summary>The interpreter line of a "#!" script (path and the one optional argument), or null.</summary>
    private static (string, string?)? Shebang(string host)
    {
        Span<byte> head = stackalloc byte[256];
        int n = HostFs.ReadHead(host, head);
        if (n < 2 || head[0] != '#' || head[1] != '!') return null;
        string line = PathBytes.Decode(head[2..n]).Split('\n')[0].Trim(' ', '\t', '\r');
        int space = line.IndexOfAny([' ', '\t']);
        if (line.Length == 0) return null;
        return space < 0 ? (line, null) : (line[..space], line[(space + 1)..].Trim(' ', '\t') is { Length: > 0 } a ? a : null);
    }

    /// <summary>A script the host would be handed by a host path (which Linux passes on to the interpreter as the
    /// script's name): the interpreter, resolved in the guest's namespace, is what the host must run.</summary>
    private PathResolution Interpret(PathRequest request, in Walked script, string interpreter, string? arg)
    {
        // The host never execs the script itself: its execute permission is the caller's, checked here.
        int denied = script.Mount.ChecksPermissions ? permissions.Check(request.Creds, script.Node, LinuxFlags.MAY_EXEC) : HostFs.Access(Readable(script), 1);
        if (denied != 0) return Fail(denied);
        string scriptGuestPath = script.GuestPath;
        var w = namei.Walk(cwds.GuestOf(request.Vpid) ?? "/", interpreter, followLast: true, request.Creds);
        if (w.Errno != 0) return Fail(w.Errno);
        if (!w.Node.Exists) return Fail(Errno.ENOENT);
        string host = ExecName(Readable(w), Mount.NameOf(interpreter), w.GuestPath);
        return new PathResolution(0, host, scriptGuestPath, Interpreter: interpreter, InterpreterArg: arg);
    }

    /// <summary>
    /// Linux names a process (comm, ps) after the last component of the path given to execve, not the file a
    /// symlink led to: "python3", not "python3.11". When the walk changed that name, the host is given a link with
    /// the guest's name to the file found.
    /// </summary>
    private string ExecName(string host, string name, string guestPath)
    {
        if (Mount.NameOf(host) == name || name is "." or ".." or "") return host;
        string dir = madeLinks.New("exec", guestPath);
        Directory.CreateDirectory(dir);
        string link = Path.Combine(dir, name);
        HostFs.Symlink(host, link);
        execLinks[link] = guestPath;
        return link;
    }

    /// <summary>The links an earlier server made (a restart): a program may still run by an exec link, and a link
    /// text is given the same host link again.</summary>
    private MadeObjects RecallLinks(string dir)
    {
        execLinks.Clear();
        links.Clear();
        var made = new MadeObjects(dir);
        foreach (var (host, guest) in made.Recall())
        {
            if (guest is not null)
            {
                // A server killed between writing the guest path and making the link left no directory.
                if (HostFs.List(host) is { } names)
                    foreach (var name in names) execLinks[Mount.Join(host, name)] = guest;
            }
            else if (HostFs.ReadLink(host) is { } text)
            {
                links[text] = host;
            }
        }
        return made;
    }

    private string? GuestPathOf(string hostPath) => execLinks.GetValueOrDefault(hostPath) ?? snapshots.GuestPathOf(hostPath) ?? mounts.GuestPathOf(hostPath);

    /// <summary>The answer for a host path: none when the guest's own string makes the host find that same path
    /// (absolute, or relative to a cwd or dirfd that is the same on both sides, with no symlink or ".." on the way),
    /// which spares rewriting the guest's argument.</summary>
    private static PathResolution Answer(string guestString, string baseHost, string host, string guestPath)
    {
        if (IsPlain(guestString))
        {
            // Nothing to fold: the string is its own names (the common case, answered without taking it apart).
            string same = guestString.StartsWith('/') ? guestString : Mount.Join(baseHost, guestString);
            return new PathResolution(0, same == host ? null : Relative(guestString, baseHost, host), guestPath);
        }
        var names = guestString.Split('/', StringSplitOptions.RemoveEmptyEntries).Where(n => n != ".").ToList();
        if (!names.Contains(".."))
        {
            string plain = guestString.StartsWith('/') ? "/" + string.Join('/', names) : Mount.Join(baseHost, string.Join('/', names));
            if (plain == host) return new PathResolution(0, null, guestPath);
        }
        return new PathResolution(0, Relative(guestString, baseHost, host), guestPath);
    }

    /// <summary>
    /// The host path a relative guest string is replaced by: relative to the same base (the cwd or the dirfd, which the
    /// call keeps) when the host path lies below it. The host then walks only from there, as it would the guest's own
    /// string: an absolute path would also need search permission on every directory above the base, which a native
    /// relative call never asks (a process in a directory below one it may no longer search).
    /// </summary>
    private static string Relative(string guestString, string baseHost, string host)
    {
        if (guestString.StartsWith('/') || !baseHost.StartsWith('/')) return host;
        if (host == baseHost) return ".";
        string prefix = baseHost == "/" ? "/" : baseHost + "/";
        return host.StartsWith(prefix, StringComparison.Ordinal) && host.Length > prefix.Length ? host[prefix.Length..] : host;
    }

    /// <summary>Whether <paramref name="path"/> has no empty, "." or ".." name and no trailing slash.</summary>
    private static bool IsPlain(string path)
    {
        if (path.Length == 0 || path[^1] == '/') return false;
        bool first = true;
        foreach (var range in path.AsSpan().Split('/'))
        {
            var name = path.AsSpan(range);
            if (first && name.Length == 0 && path[0] == '/')
            {
                first = false;
                continue; // the root an absolute path starts at
            }
            first = false;
            if (name.Length == 0 || name is "." or "..") return false;
        }
        return true;
    }

    /// <summary>A clean end (shutdown, or the supervisor's pipe closed because it was killed): the state and tmpfs
    /// directories go with the guest, as the supervisor would remove them. A crash leaves them for a restart.</summary>
    public void Dispose()
    {
        lock (gate)
        {
            changes?.Dispose();
            epoch?.Dispose();
            if (kernelFiles is null) return;
            foreach (var dir in new[] { stateDir, memoryDir })
                if (StateDirectory.Remove(dir) is { } problem) Console.Error.WriteLine($"vfs: could not remove {dir}: {problem}");
        }
    }

    private static PathResolution Fail(int errno) => new(errno, null, null);

    private static string LastComponent(string path) => path.TrimEnd('/').Split('/')[^1];

    private void Configured()
    {
        if (kernelFiles is null) throw ProtocolViolation.Of("vfs/configure must come first");
    }

    /// <summary>A tmpfs mount's host directory: made with tmpfs's default root mode, 1777, as Linux mounts one (anyone
    /// may make names in it; only their owners remove them). One that exists (a restart) keeps what the guest made of it.</summary>
    private static string TmpfsRoot(string dir)
    {
        if (!Directory.Exists(dir))
        {
            Directory.CreateDirectory(dir);
            HostFs.Chmod(dir, LinuxFlags.S_ISVTX | 0x1FF);
        }
        return dir;
    }

    private static string HostDir(string? path, string what)
    {
        if (path is null || !path.StartsWith('/')) throw ProtocolViolation.Of($"the {what} must be an absolute host path, not '{path}'");
        if (!HostFs.IsDirectory(path)) throw ProtocolViolation.Of($"the {what} {path} is not a host directory");
        return Path.GetFullPath(path).TrimEnd('/') is { Length: > 0 } p ? p : "/";
    }

    /// <summary>A path that names a directory the kernel itself records: it must be absolute and valid as Linux
    /// checks paths; it is stored walked, without a trailing slash.</summary>
    private static string AbsolutePath(string? path, string what)
    {
        if (path is null || !path.StartsWith('/')) throw ProtocolViolation.Of($"the {what} must be an absolute path, not '{path}'");
        if (PathWalk.Check(path) != 0) throw ProtocolViolation.Of($"the {what} '{path}' is too long");
        return PathWalk.Walk("/", path).GuestPath;
    }
}
