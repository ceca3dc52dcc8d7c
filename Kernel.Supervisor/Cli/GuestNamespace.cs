using UmlMicro.Contracts.Servers;

namespace UmlMicro.Supervisor.Cli;

/// <summary>
/// The guest's namespace as the configuration asks for it, and the private host directories the VFS keeps its
/// state in (its copy-on-write layer unless one is kept, its journal, snapshots, generated /proc files; tmpfs
/// contents on the host's /dev/shm). The supervisor makes them and removes them when the guest ends, also when
/// the VFS itself died.
/// </summary>
internal sealed class GuestNamespace : IDisposable
{
    public required IReadOnlyList<MountSpec> Mounts { get; init; }
    /// <summary>The guest directory guest pid 1 starts in.</summary>
    public required string InitialCwd { get; init; }
    /// <summary>The host directory behind <see cref="InitialCwd"/>, where the launcher takes its cwd.</summary>
    public required string HostCwd { get; init; }
    public required string StateDir { get; init; }
    public required string MemoryDir { get; init; }
    public required string UpperDir { get; init; }

    /// <summary>The only uid and gid the guest's user namespace maps (a run by an unprivileged user, see
    /// HostWall.MapIds); null for a run by root, whose namespace maps every id.</summary>
    public uint? OnlyUid => Native.Interop.geteuid() is var uid and not 0 ? uid : null;
    public uint? OnlyGid => Native.Interop.geteuid() != 0 ? Native.Interop.getegid() : null;

    /// <summary>The namespace <see cref="MountsFor"/> gives, starting in <paramref name="workDir"/> when given, else in
    /// <see cref="DefaultCwd"/>; its state directories made.</summary>
    public static GuestNamespace Create(VfsSection vfs, string cwd, string? workDir = null)
    {
        var mounts = MountsFor(vfs, cwd);
        // An image's WorkingDir may be relative (to /) or hold .. and symlinks: the guest's, followed inside its root.
        string initialCwd = workDir is null ? DefaultCwd(vfs, cwd) : Path.GetFullPath(workDir, "/");
        string? hostCwd = GuestStart.HostFile(mounts, initialCwd);
        if (hostCwd is null || !Native.Interop.IsDirectory(hostCwd))
        {
            if (workDir is not null) throw new UsageError($"working directory {workDir}: no such directory in the guest");
            hostCwd = HostPath(mounts, initialCwd);
        }

        string state = MakeStateDir(StateParent());
        // Searchable by anyone, listable by none: the VFS hands a guest host paths in it (the copy-on-write layer, links,
        // snapshots), and a guest thread that changed its user must still reach them; what is inside carries the guest's
        // own modes and owners.
        File.SetUnixFileMode(state, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
        string shm = Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath();
        string memory = Directory.CreateDirectory(Path.Combine(shm, Path.GetFileName(state))).FullName;
        string upper = "";
        if (vfs.KeepChanges.Length > 0)
        {
            try
            {
                upper = Path.GetFullPath(vfs.KeepChanges, Native.Interop.HostCwd());
                if (StateDirectory.Make(upper) is { } problem) throw new IOException(problem);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new ConfigError($"--keep-changes {vfs.KeepChanges}: {e.Message}");
            }
        }
        return new GuestNamespace
        {
            Mounts = mounts,
            InitialCwd = initialCwd,
            HostCwd = hostCwd,
            StateDir = state,
            MemoryDir = memory,
            UpperDir = upper,
        };
    }

    /// <summary>
    /// The root overlay, /proc, /dev (with /dev/shm and the host's /dev/pts), the host's /sys read-only, the
    /// current directory writable at its own path (when the root is the host's, it is not "/" and --isolate is
    /// off), then --bind and --tmpfs in order.
    /// </summary>
    public static List<MountSpec> MountsFor(VfsSection vfs, string cwd)
    {
        string root = Path.GetFullPath(vfs.Root);
        var mounts = new List<MountSpec>
        {
            new("overlay", "/", root, false),
            new("proc", "/proc", "", false),
            new("dev", "/dev", "", false),
            new("tmpfs", "/dev/shm", "", false),
        };
        if (Directory.Exists("/dev/pts")) mounts.Add(new("bind", "/dev/pts", "/dev/pts", false));
        if (Directory.Exists("/sys")) mounts.Add(new("bind", "/sys", "/sys", true));
        if (root == "/" && !vfs.Isolate && cwd != "/") mounts.Add(new("bind", cwd, cwd, false));
        foreach (var bind in vfs.Binds.Select(BindSpec.Parse))
            mounts.Add(new("bind", bind.Guest, bind.Host, bind.ReadOnly));
        foreach (var tmpfs in vfs.Tmpfs)
            mounts.Add(new("tmpfs", tmpfs, "", false));
        return mounts;
    }

    /// <summary>Where the guest starts unless told: the current directory when the root is the host's, else /.</summary>
    public static string DefaultCwd(VfsSection vfs, string cwd) => Path.GetFullPath(vfs.Root) == "/" ? cwd : "/";

    /// <summary>The host path behind guest path <paramref name="guest"/>, through the last host-backed mount above it (the
    /// root overlay's lower layer, or a bind).</summary>
    public static string HostPath(IReadOnlyList<MountSpec> mounts, string guest)
    {
        var mount = mounts.Where(m => m.Kind is "overlay" or "bind" && (m.GuestPath == "/" || guest == m.GuestPath || guest.StartsWith(m.GuestPath + "/", StringComparison.Ordinal)))
            .MaxBy(m => m.GuestPath.Length)!;
        string rest = guest[mount.GuestPath.TrimEnd('/').Length..];
        return mount.Source.TrimEnd('/') + rest is { Length: > 0 } p ? p : "/";
    }

    /// <summary>
    /// Where the state directory is made: the temp directory (TMPDIR), unless a guest run by root could change its user
    /// and then not search one of the directories above it (TMPDIR under /root, say): the host paths the VFS hands out in
    /// the state directory (the copy-on-write layer, exec links) must be reachable by whoever the guest becomes, as the
    /// guest paths they stand for are natively. Then the first world-searchable of /var/tmp and /tmp.
    /// </summary>
    private static string StateParent()
    {
        string temp = Path.GetTempPath().TrimEnd('/') is { Length: > 0 } t ? t : "/";
        if (Native.Interop.geteuid() != 0 || SearchableByAll(temp)) return temp;
        return new[] { "/var/tmp", "/tmp" }.FirstOrDefault(d => Directory.Exists(d) && SearchableByAll(d)) ?? temp;
    }

    /// <summary>A fresh private directory under <paramref name="parent"/>, named unpredictably (as mkdtemp does: a name
    /// that exists is never taken over).</summary>
    private static string MakeStateDir(string parent)
    {
        if (parent == Path.GetTempPath().TrimEnd('/')) return Directory.CreateTempSubdirectory($"umlmicro-{Environment.ProcessId}-").FullName;
        for (int attempt = 0; ; attempt++)
        {
            string dir = Path.Combine(parent, $"umlmicro-{Environment.ProcessId}-{Path.GetRandomFileName().Replace(".", "", StringComparison.Ordinal)}");
            if (Path.Exists(dir)) continue;
            var made = Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            if (made.LinkTarget is null) return made.FullName;
            if (attempt > 16) throw new IOException($"cannot make a state directory in {parent}");
        }
    }

    /// <summary>Every directory from the root to <paramref name="dir"/> may be searched by others.</summary>
    private static bool SearchableByAll(string dir)
    {
        for (var d = new DirectoryInfo(dir); d is not null; d = d.Parent)
        {
            if (!d.Exists) return false;
            if ((d.UnixFileMode & UnixFileMode.OtherExecute) == 0) return false;
        }
        return true;
    }

    public void Dispose()
    {
        foreach (var dir in new[] { StateDir, MemoryDir })
            if (StateDirectory.Remove(dir) is { } problem) Console.Error.WriteLine($"umlmicro: could not remove {dir}: {problem}");
    }
}
