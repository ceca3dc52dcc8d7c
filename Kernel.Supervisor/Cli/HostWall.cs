using System.Globalization;
using System.Text;
using UmlMicro.Contracts.Linux;
using UmlMicro.Contracts.Syscalls;

namespace UmlMicro.Supervisor.Cli;

/// <summary>
/// The second wall (README, "Security"): the confinement the host kernel itself enforces around the guest, whatever
/// slips past the routing. The supervisor decides it here, as a plan of simple steps; the launcher carries them out
/// before the guest's first instruction (<c>Native/launcher.c</c>, <c>build_wall</c>):
/// <list type="bullet">
/// <item>its own user, mount, pid, IPC and UTS namespaces (and network with <c>--net none</c>): the guest's root is root
/// only there, with no capability over the host's resources; its SysV objects, message queues and hostname are its own;</item>
/// <item>a mount namespace in which everything the guest may not write is read-only, nosuid and nodev (the host
/// answers EROFS), with the writable areas — the VFS's state and memory directories (the copy-on-write layer, tmpfs
/// contents), the cwd bind, <c>--bind</c> without <c>:ro</c>, <c>--keep-changes</c> — and devfs' few devices excepted.
/// Under <c>--root DIR</c> the root is a private tmpfs holding only the guest's own trees at their host paths (the
/// VFS hands the host host paths), the host's <c>/proc</c>, <c>/sys</c> and <c>/dev/pts</c>, and the top-level names
/// of DIR itself at <c>/</c>, so that what the host kernel resolves alone (a program's <c>PT_INTERP</c>, a
/// <c>#!</c> interpreter) is the guest's;</item>
/// <item>a capability bounding set no larger than Docker's default, <c>no_new_privs</c>, Landlock (writes only
/// beneath the writable areas; no signal to, and no abstract socket of, a process outside the guest), and a seccomp
/// layer that makes the host refuse, with the table's errno, every call the kernel always refuses. That layer holds
/// a user-notification listener, so a guest cannot install one of its own (EBUSY): its answers would outrank the
/// tracer's trap.</item>
/// </list>
/// </summary>
internal sealed class HostWall
{
    /// <summary>Docker's default capability set: CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID, SETPCAP,
    /// NET_BIND_SERVICE, NET_RAW, SYS_CHROOT, MKNOD, AUDIT_WRITE, SETFCAP.</summary>
    public static readonly int[] Capabilities = [0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31];

    /// <summary><see cref="Capabilities"/> as a capability set (the guest's bounding set).</summary>
    public static readonly ulong CapabilityMask = Capabilities.Aggregate(0UL, (m, c) => m | 1UL << c);

    /// <summary>The devices devfs hands the guest (the host's nodes), the only ones the mount namespace lets it open.</summary>
    public static readonly string[] Devices = ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty", "/dev/ptmx"];

    private const string OldRoot = "/.oldroot";

    private readonly List<string> _steps = [];

    /// <summary>The plan's steps, one per line: an operation and its arguments (two are separated by a tab).</summary>
    public IReadOnlyList<string> Steps => _steps;

    /// <summary>The guest's view of the network: the host's (not configurable), or a private one with loopback only.</summary>
    public bool PrivateNetwork { get; }

    private HostWall(bool privateNetwork) => PrivateNetwork = privateNetwork;

    /// <summary>The wall around the guest <paramref name="ns"/> describes: its root, and the host directories of its mounts
    /// (the VFS's state and memory directories and binds without <c>:ro</c> writable, the other binds read-only).</summary>
    public static HostWall Plan(GuestNamespace ns, bool privateNetwork, string hostname, string denyFilter, GuestUser? user = null)
    {
        var writable = new List<string> { ns.StateDir, ns.MemoryDir };
        if (ns.UpperDir.Length > 0) writable.Add(ns.UpperDir);
        var binds = ns.Mounts.Where(m => m.Kind == "bind").ToList();
        writable.AddRange(binds.Where(m => !m.ReadOnly).Select(m => m.Source));
        var readOnly = binds.Where(m => m.ReadOnly).Select(m => m.Source).ToList();
        return Plan(ns.Mounts[0].Source, [.. writable.Distinct()], [.. readOnly.Distinct()], ns.HostCwd, hostname, privateNetwork, denyFilter, user);
    }

    /// <param name="root">The guest's root as a host directory (the VFS's lower layer).</param>
    /// <param name="writable">Host directories the guest's calls may change (the VFS hands it paths in them).</param>
    /// <param name="readOnly">Other host directories the guest must reach (read-only binds).</param>
    /// <param name="cwd">The host directory the guest starts in.</param>
    /// <param name="denyFilter">The seccomp deny layer, as the launcher takes a filter (hex of a sock_filter array).</param>
    /// <param name="user">The user the guest becomes, last (null: the caller's).</param>
    public static HostWall Plan(string root, IReadOnlyList<string> writable, IReadOnlyList<string> readOnly, string cwd, string hostname,
        bool privateNetwork, string denyFilter, GuestUser? user = null)
    {
        var wall = new HostWall(privateNetwork);
        // The new pid namespace is for the launcher's children: it starts the namespace's init and guest pid 1 in it.
        const ulong namespaces = LinuxFlags.CLONE_NEWUSER | LinuxFlags.CLONE_NEWNS | LinuxFlags.CLONE_NEWPID | LinuxFlags.CLONE_NEWIPC | LinuxFlags.CLONE_NEWUTS;
        wall.Step("unshare", (namespaces | (privateNetwork ? LinuxFlags.CLONE_NEWNET : 0)).ToString("x", CultureInfo.InvariantCulture));
        if (hostname.Length > 0) wall.Step("hostname", hostname);
        wall.Step("slave"); // nothing mounted from here on reaches the host's namespace
        var devices = Devices.Where(IsCharDevice).ToList();
        if (root == "/")
        {
            // The host's tree is the guest's: each area that must differ from the rest becomes a mount of its own.
            foreach (var dir in writable) wall.Step("bind", dir, dir);
            foreach (var dev in devices) wall.Step("bind", dev, dev);
        }
        else
        {
            wall.NewRoot(root, writable, readOnly, devices);
            if (!Under(cwd, [root, .. writable, .. readOnly])) cwd = root;
        }
        wall.Step("seal");
        foreach (var dir in writable) wall.Step("writable", dir);
        // A cwd is a mount and a directory: taken again, it is the directory as the new mounts show it.
        wall.Step("chdir", cwd);
        foreach (var dev in devices) wall.Step("device", dev);
        if (Directory.Exists("/dev/pts")) wall.Step("device", "/dev/pts");
        if (privateNetwork) wall.Step("loopback");
        wall.Step("capabilities", CapabilityMask.ToString("x", CultureInfo.InvariantCulture));
        wall.Step("landlock");
        foreach (var dir in writable) wall.Step("allow-write", dir);
        foreach (var dev in devices) wall.Step("allow-write", dev);
        if (Directory.Exists("/dev/pts")) wall.Step("allow-write", "/dev/pts");
        wall.Step("enforce");
        wall.Step("deny", denyFilter);
        wall.Step("sysvipc");
        // Only root may change who it is; another caller's guest is that caller (GuestStart refuses any other user).
        if (user is not null && Native.Interop.geteuid() == 0)
            wall.Step("user", $"{user.Uid}:{user.Gid}", string.Join(',', user.Groups));
        return wall;
    }

    /// <summary>
    /// A private tmpfs root with the host paths the guest is given bound at their own paths (from the old root, kept
    /// at <see cref="OldRoot"/> meanwhile), and every top-level name of the guest's root that no such path needs at
    /// <c>/</c>.
    /// </summary>
    private void NewRoot(string root, IReadOnlyList<string> writable, IReadOnlyList<string> readOnly, IReadOnlyList<string> devices)
    {
        var hostPaths = new List<string> { root };
        hostPaths.AddRange(writable);
        hostPaths.AddRange(readOnly);
        foreach (var shared in new[] { "/proc", "/sys", "/dev/pts" })
            if (Directory.Exists(shared)) hostPaths.Add(shared);
        hostPaths.AddRange(devices);
        // The new root is made over the state directory, which the plan needs anyway: its host contents stay
        // reachable through the old root until they are bound back.
        Step("newroot", writable[0]);
        foreach (var path in hostPaths.Distinct()) Step("bind", OldRoot + path, path);
        var taken = hostPaths.Select(p => p.Split('/', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault() ?? "")
            .Append("dev").ToHashSet(StringComparer.Ordinal);
        foreach (var entry in new DirectoryInfo(root).EnumerateFileSystemInfos().OrderBy(e => e.Name, StringComparer.Ordinal))
        {
            if (taken.Contains(entry.Name)) continue;
            if (entry.LinkTarget is { } target) Step("symlink", target, "/" + entry.Name);
            else Step("bind", OldRoot + entry.FullName, "/" + entry.Name);
        }
        Step("dropold");
    }

    private static bool Under(string path, IEnumerable<string> dirs) =>
        dirs.Any(d => path == d || path.StartsWith(d.TrimEnd('/') + "/", StringComparison.Ordinal));

    private static bool IsCharDevice(string path) => Native.Interop.IsCharDevice(path) && new FileInfo(path).LinkTarget is null;

    private void Step(string op, params string[] args)
    {
        foreach (var a in args)
            if (a.Contains('\n') || a.Contains('\t'))
                throw new UsageError($"cannot confine a guest with a path that holds a newline or a tab: {a}");
        _steps.Add(args.Length == 0 ? op : $"{op} {string.Join('\t', args)}");
    }

    /// <summary>Writes the plan where the launcher reads it.</summary>
    public string WriteTo(string dir)
    {
        string path = Path.Combine(dir, "wall");
        // Its paths are bytes as every path is (PathBytes): written as the bytes they stand for.
        File.WriteAllBytes(path, PathBytes.Encode(string.Join('\n', _steps) + "\n"));
        return path;
    }

    /// <summary>
    /// The user namespace's maps, written by the supervisor while the launcher waits: root keeps every id (a guest's
    /// root sees the host's files as their owners have them, and holds capabilities only inside its namespaces);
    /// another user maps its own uid and gid only, as an unprivileged process may.
    /// </summary>
    public static void MapIds(int pid)
    {
        uint uid = Native.Interop.geteuid(), gid = Native.Interop.getegid();
        if (uid == 0)
        {
            File.WriteAllText($"/proc/{pid}/uid_map", "0 0 4294967295\n");
            File.WriteAllText($"/proc/{pid}/gid_map", "0 0 4294967295\n");
            return;
        }
        File.WriteAllText($"/proc/{pid}/setgroups", "deny\n");
        File.WriteAllText($"/proc/{pid}/uid_map", $"{uid} {uid} 1\n");
        File.WriteAllText($"/proc/{pid}/gid_map", $"{gid} {gid} 1\n");
    }
}
