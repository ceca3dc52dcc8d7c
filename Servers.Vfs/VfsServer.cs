using System.Text;
using UmlMicro.Contracts.Linux;
using UmlMicro.Contracts.Servers;

namespace UmlMicro.Servers.Vfs;

/// <summary>
/// The VFS server: the guest's namespace (in this version one root mount, a host directory) and each process's
/// current directory; it turns the paths a guest names into the paths the host must be given.
/// <para>
/// Rebuilding after a crash: the server keeps no journal and reads nothing back from the host. Its state is the
/// root and each live process's cwd, and both come from events the supervisor saw. A restarted server is given
/// vfs/configure (which starts a fresh table with pid 1 in the initial cwd), then the vfs/process_created,
/// vfs/set_cwd and vfs/process_exited events in the order the supervisor saw them; that rebuilds the table
/// exactly. A shorter replay of the live processes only is possible if it keeps CLONE_FS sharing: processes
/// that share a cwd must be recreated with shareFs from one of them, which may not be their original parent.
/// </para>
/// </summary>
internal sealed class VfsServer : KernelServerBase, IVfsServer, IDisposable
{
    private const int InitPid = 1;

    // Requests are serialised: the server is a single-threaded kernel, one message at a time, as in MINIX.
    private readonly Lock gate = new();
    private readonly CwdTable cwds = new();
    private RootMount root = new("/");
    private KernelFiles? kernelFiles;

    /// <summary>Until configured, the guest's root is the host's "/" and init starts there.</summary>
    public VfsServer() : base(Contract.VfsName, Contract.VfsVersion) => cwds.Reset(InitPid, "/");

    /// <summary>Sets the root and starts a new cwd table in which only init exists.</summary>
    public Task ConfigureAsync(VfsConfig config)
    {
        string hostRoot = AbsolutePath(config.Root, "root");
        if (!Directory.Exists(hostRoot))
            throw ProtocolViolation.Of($"the guest root {config.Root} is not a host directory");
        string initCwd = AbsolutePath(config.InitialCwd, "initial cwd");
        lock (gate)
        {
            root = new RootMount(hostRoot);
            cwds.Reset(InitPid, initCwd);
            kernelFiles?.Dispose();
            kernelFiles = new KernelFiles(config.Release ?? "", config.Hostname ?? "", config.Cpus);
        }
        return Task.CompletedTask;
    }

    public Task ProcessCreatedAsync(int parentVpid, int childVpid, bool shareFs)
    {
        lock (gate)
        {
            if (!cwds.Contains(parentVpid))
                throw ProtocolViolation.Of($"no process {parentVpid}");
            if (cwds.Contains(childVpid))
                throw ProtocolViolation.Of($"process {childVpid} already exists");
            cwds.Fork(parentVpid, childVpid, shareFs);
        }
        return Task.CompletedTask;
    }

    public Task ProcessExitedAsync(int vpid)
    {
        lock (gate)
        {
            if (!cwds.Contains(vpid))
                throw ProtocolViolation.Of($"no process {vpid}");
            cwds.Exit(vpid);
        }
        return Task.CompletedTask;
    }

    /// <summary>
    /// Resolves a guest path. The host path is null when the guest's own string already names the file, so the
    /// supervisor need not rewrite guest memory. That is always so under the identity root: the host's own walk
    /// (its cwd is the guest's, its symlinks are the guest's) finds the same file, where a lexical rewrite could
    /// only get ".." after a symlink wrong. Both paths are null for a relative path under a directory fd other
    /// than AT_FDCWD: fd tables come later, and the host resolves it against the real fd.
    /// </summary>
    public Task<PathResolution> ResolveAsync(PathRequest request)
    {
        if (request.Path is null)
            throw ProtocolViolation.Of("a path request without a path");
        lock (gate)
        {
            if (!cwds.TryGet(request.Vpid, out string cwd))
                return Answer(Errno.ESRCH);
            int errno = PathWalk.Check(request.Path);
            if (errno != 0)
                return Answer(errno);
            if (!request.Path.StartsWith('/') && request.DirFd != LinuxFlags.AT_FDCWD)
                return Answer(0);
            var walked = PathWalk.Walk(cwd, request.Path);
            if (kernelFiles?.Lookup(walked.GuestPath, request.Op == PathOp.Open ? request.OpenFlags : 0, out int denied) is { } kernelFile)
                return Task.FromResult(new PathResolution(denied, denied == 0 ? kernelFile : null, walked.GuestPath));
            string hostPath = root.ToHost(walked);
            if (root.IsIdentity || hostPath == request.Path)
                return Task.FromResult(new PathResolution(0, null, walked.GuestPath));
            // Linux walks a long cwd piece by piece, but the host is handed one string and refuses it.
            if (Encoding.UTF8.GetByteCount(hostPath) >= LinuxFlags.PATH_MAX)
                return Answer(Errno.ENAMETOOLONG);
            return Task.FromResult(new PathResolution(0, hostPath, walked.GuestPath));
        }
    }

    public Task<CwdResult> GetCwdAsync(int vpid)
    {
        lock (gate)
        {
            if (!cwds.TryGet(vpid, out string cwd))
                return Task.FromResult(new CwdResult(Errno.ESRCH, null));
            // A cwd that was removed has no path any more: Linux's getcwd says ENOENT.
            if (!Directory.Exists(root.ToHost(new WalkedPath(cwd, MustBeDirectory: false))))
                return Task.FromResult(new CwdResult(Errno.ENOENT, null));
            return Task.FromResult(new CwdResult(0, cwd));
        }
    }

    public Task SetCwdAsync(int vpid, string guestPath)
    {
        string cwd = AbsolutePath(guestPath, "cwd");
        lock (gate)
        {
            if (!cwds.Contains(vpid))
                throw ProtocolViolation.Of($"no process {vpid}");
            cwds.Set(vpid, cwd);
        }
        return Task.CompletedTask;
    }

    private static Task<PathResolution> Answer(int errno) => Task.FromResult(new PathResolution(errno, null, null));

    /// <summary>A path that names a directory the kernel itself records: it must be absolute and valid as Linux
    /// checks paths; it is stored walked, without a trailing slash.</summary>
    private static string AbsolutePath(string? path, string what)
    {
        if (path is null || !path.StartsWith('/'))
            throw ProtocolViolation.Of($"the {what} must be an absolute path, not '{path}'");
        if (PathWalk.Check(path) != 0)
            throw ProtocolViolation.Of($"the {what} '{path}' is too long");
        return PathWalk.Walk("/", path).GuestPath;
    }

    public void Dispose()
    {
        lock (gate)
            kernelFiles?.Dispose();
    }
}
