using System.Text.Json;
using System.Text;
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
/// Leases (PathResolution.Lease): an answer that names an existing object of a host-backed mount by its own host path,
/// or says a name is missing from a directory of one, to a question that changes nothing, is granted for
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
    private Snapshots snapshots = null!;
    private KernelFiles? kernelFiles;
    private MadeObjects madeLinks = null!;
    private ChangeJournal? changes;
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
                    "tmpfs" => new HostMount(point, Directory.CreateDirectory(Path.Combine(memory, $"tmpfs{++tmpfs}")).FullName, spec.ReadOnly, "tmpfs"),
                    "proc" => new ProcFs(proc, table, GuestPathOf, cwds.GuestOf, Directory.CreateDirectory(Path.Combine(state, "proc")).FullName),
                    "dev" => new DevFs(point),
                    _ => throw ProtocolViolation.Of($"cannot mount a {spec.Kind} at {point}"),
                });
            }
            var walker = new Namei(table);
            proc.Processes = null;
            var start = walker.Walk("/", initCwd, followLast: true);
            if (start.Errno != 0 || start.Node.Type != NodeType.Directory)
                throw ProtocolViolation.Of($"the initial cwd {initCwd} is not a directory of the guest");
            mounts = table;
            namei = walker;
            snapshots = new Snapshots(Directory.CreateDirectory(Path.Combine(state, "snapshots")).FullName);
            madeLinks = RecallLinks(Path.Combine(state, "links"));
            changes?.Dispose();
            changes = new ChangeJournal(Path.Combine(state, "change"));
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
        lock (gate)
        {
            Configured();
            proc.Vpid = request.Vpid;
            proc.Vtid = request.Vtid;
            proc.Processes = request.Processes;
            proc.Maps = request.Maps;
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
            catch (NeedMapsException need)
            {
                return Task.FromResult(new PathResolution(0, null, null, NeedMapsOf: need.Vpid));
            }
            finally
            {
                proc.Maps = null; // facts of one request: a later one must not see a stale map
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
        string path = request.Arg.Path;
        int errno = Walk(request.Vpid, request.Arg, request.FollowLast, out var w, out string baseHost);
        if (errno != 0) return Fail(errno);
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
                Revoking();
                errno = w.Mount.PrepareCreate(w.Rel, node, out host, out commit);
                makes = true;
                break;
            case PathOp.Create when node.Exists:
                return Fail(Errno.EEXIST);
            case PathOp.Create:
                if ((flags & S_IFMT) is S_IFCHR or S_IFBLK) return Fail(Errno.EPERM); // no host devices for a guest
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
                    return Interpret(request, host, interpreter, arg, w.GuestPath);
                host = ExecName(host, LastComponent(path), w.GuestPath);
                break;
            default:
                host = Readable(w);
                leasable = w.Stable && node.Layer is Layer.Host or Layer.Upper or Layer.Lower && host == node.HostPath;
                break;
        }
        if (errno != 0) return Fail(errno);
        if (Encoding.UTF8.GetByteCount(host) >= LinuxFlags.PATH_MAX) return Fail(Errno.ENAMETOOLONG);
        return Answer(path, baseHost, host, w.GuestPath) with { CommitOnSuccess = commit, MakesName = makes };
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

    private int Change(NameChange c)
    {
        bool follow = c.Op == NameOp.Link && (c.Flags & LinuxFlags.AT_SYMLINK_FOLLOW) != 0;
        int errno = Walk(c.Vpid, c.Path, follow, out var w, out _);
        if (errno != 0) return errno;
        string last = LastComponent(c.Path.Path);
        switch (c.Op)
        {
            case NameOp.Unlink:
                if (!w.Node.Exists) return Errno.ENOENT;
                if (w.Node.Type == NodeType.Directory) return Errno.EISDIR;
                return w.Mount.Remove(w.Rel, w.Node, directory: false);
            case NameOp.Rmdir:
                if (last == ".") return Errno.EINVAL;
                if (last == "..") return Errno.ENOTEMPTY;
                if (!w.Node.Exists) return Errno.ENOENT;
                if (w.Node.Type != NodeType.Directory) return Errno.ENOTDIR;
                if (w.Rel.Length == 0) return Errno.EBUSY;
                return w.Mount.Remove(w.Rel, w.Node, directory: true);
            case NameOp.Symlink:
                if (w.Node.Exists) return Errno.EEXIST;
                if (string.IsNullOrEmpty(c.Target)) return Errno.ENOENT;
                return w.Mount.Symlink(c.Target, w.Rel, w.Node);
        }
        if (c.NewPath is null) throw ProtocolViolation.Of($"{c.Op} without a new path");
        errno = Walk(c.Vpid, c.NewPath, followLast: false, out var to, out _);
        if (errno != 0) return errno;
        if (!w.Node.Exists) return Errno.ENOENT;
        if (c.Op == NameOp.Link)
        {
            if (to.Node.Exists) return Errno.EEXIST;
            if (to.Mount != w.Mount) return Errno.EXDEV;
            if (w.Node.Type == NodeType.Directory) return Errno.EPERM;
            return to.Mount.Link(w.Rel, w.Node, to.Rel, to.Node);
        }
        // rename
        if (last is "." or ".." || LastComponent(c.NewPath.Path) is "." or "..") return Errno.EBUSY;
        if (to.Mount != w.Mount) return Errno.EXDEV;
        if (w.Rel.Length == 0 || to.Rel.Length == 0) return Errno.EBUSY;
        if (to.GuestPath == w.GuestPath) return 0;
        if (to.GuestPath.StartsWith(w.GuestPath + "/", StringComparison.Ordinal)) return Errno.EINVAL;
        if ((c.Flags & HostFs.RENAME_EXCHANGE) == 0 && to.Node.Exists)
        {
            if ((c.Flags & HostFs.RENAME_NOREPLACE) != 0) return Errno.EEXIST;
            if (w.Node.Type == NodeType.Directory && to.Node.Type != NodeType.Directory) return Errno.ENOTDIR;
            if (w.Node.Type != NodeType.Directory && to.Node.Type == NodeType.Directory) return Errno.EISDIR;
        }
        else if ((c.Flags & HostFs.RENAME_EXCHANGE) != 0 && !to.Node.Exists)
        {
            return Errno.ENOENT;
        }
        int renamed = w.Mount.Rename(w.Rel, w.Node, to.Rel, to.Node, (uint)c.Flags);
        if (renamed == 0 && w.Node.Type == NodeType.Directory)
        {
            // A cwd is a directory, not a name (Linux's fs_struct holds the dentry): processes in or under the
            // renamed one are where they were, under its new name; with RENAME_EXCHANGE the other one moves too.
            bool exchange = (c.Flags & HostFs.RENAME_EXCHANGE) != 0 && to.Node.Type == NodeType.Directory;
            cwds.Renamed(w.GuestPath, to.GuestPath, exchange);
        }
        return renamed;
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
    private int Walk(int vpid, PathArg arg, bool followLast, out Walked walked, out string baseHost)
    {
        walked = default;
        baseHost = "";
        if (!cwds.TryGet(vpid, out string start, out baseHost)) return Errno.ESRCH;
        int errno = PathWalk.Check(arg.Path);
        if (errno != 0) return errno;
        if (!arg.Path.StartsWith('/') && arg.DirHostPath is { } dirHost)
        {
            // The dirfd's directory, as the guest knows it; one that is not in the guest's namespace (or not a
            // directory) cannot be walked from.
            if (GuestPathOf(dirHost) is not { } dirGuest) return dirHost.StartsWith('/') ? Errno.EACCES : Errno.ENOTDIR;
            var dir = namei.Walk("/", dirGuest, followLast: false);
            if (dir.Errno != 0) return dir.Errno;
            if (dir.Node.Type != NodeType.Directory) return Errno.ENOTDIR;
            (start, baseHost) = (dir.GuestPath, dirHost);
        }
        string path = arg.Path;
        // A host path the kernel handed out itself (the host passes an exec'd script's path to its interpreter)
        // means the guest path it stands for.
        if (path.StartsWith(stateDir, StringComparison.Ordinal) && path.Length > stateDir.Length && path[stateDir.Length] == '/'
            && GuestPathOf(path) is { } alias)
            path = alias;
        walked = namei.Walk(start, path, followLast);
        return walked.Errno;
    }

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
        int n;
        try
        {
            using var f = File.OpenRead(host);
            n = f.Read(head);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
        if (n < 2 || head[0] != '#' || head[1] != '!') return null;
        string line = Encoding.UTF8.GetString(head[2..n]).Split('\n')[0].Trim(' ', '\t', '\r');
        int space = line.IndexOfAny([' ', '\t']);
        if (line.Length == 0) return null;
        return space < 0 ? (line, null) : (line[..space], line[(space + 1)..].Trim(' ', '\t') is { Length: > 0 } a ? a : null);
    }

    /// <summary>A script the host would be handed by a host path (which Linux passes on to the interpreter as the
    /// script's name): the interpreter, resolved in the guest's namespace, is what the host must run.</summary>
    private PathResolution Interpret(PathRequest request, string script, string interpreter, string? arg, string scriptGuestPath)
    {
        if (HostFs.Access(script, 1) is var denied and not 0) return Fail(denied);
        var w = namei.Walk(cwds.GuestOf(request.Vpid) ?? "/", interpreter, followLast: true);
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
                if (Directory.Exists(host))
                    foreach (var link in Directory.EnumerateFileSystemEntries(host)) execLinks[link] = guest;
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
            return new PathResolution(0, same == host ? null : host, guestPath);
        }
        var names = guestString.Split('/', StringSplitOptions.RemoveEmptyEntries).Where(n => n != ".").ToList();
        if (!names.Contains(".."))
        {
            string plain = guestString.StartsWith('/') ? "/" + string.Join('/', names) : Mount.Join(baseHost, string.Join('/', names));
            if (plain == host) return new PathResolution(0, null, guestPath);
        }
        return new PathResolution(0, host, guestPath);
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

    private static string HostDir(string? path, string what)
    {
        if (path is null || !path.StartsWith('/')) throw ProtocolViolation.Of($"the {what} must be an absolute host path, not '{path}'");
        if (!Directory.Exists(path)) throw ProtocolViolation.Of($"the {what} {path} is not a host directory");
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
