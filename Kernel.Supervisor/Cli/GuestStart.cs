using UmlMicro.Contracts.Servers;

namespace UmlMicro.Supervisor.Cli;

/// <summary>
/// How guest pid 1 starts: the program (a guest path) and its arguments, its environment, the guest directory it starts
/// in (null: <see cref="GuestNamespace.DefaultCwd"/>) and its user (null: the caller's).
/// </summary>
internal sealed record GuestStart(string Program, IReadOnlyList<string> Argv, IReadOnlyList<string> Environment, string? WorkDir, GuestUser? User)
{
    /// <summary>Symlinks followed in one lookup before it is ELOOP, as Linux's namei.</summary>
    private const int MaxLinks = 40;

    /// <param name="mounts">The guest's namespace (<see cref="GuestNamespace.MountsFor"/>): its root first.</param>
    /// <param name="defaultCwd">Where the guest starts unless <paramref name="guest"/> says.</param>
    /// <param name="inherited">The environment the guest inherits: the supervisor's own, as it started.</param>
    public static GuestStart Resolve(RunOptions run, GuestSection guest, IReadOnlyList<MountSpec> mounts, string defaultCwd, IReadOnlyList<string> inherited)
    {
        var env = WithSettings(inherited, guest.Env);
        var user = guest.User.Length > 0 ? GuestUser.Resolve(guest.User, mounts[0].Source) : null;
        uint uid = Native.Interop.geteuid();
        if (user is not null && uid != 0 && (user.Uid != uid || user.Gid != Native.Interop.getegid()))
            throw new UsageError($"--user {guest.User}: only root may start the guest as another user (the guest's user namespace maps only uid {uid})");
        string? workDir = guest.WorkDir.Length > 0 ? guest.WorkDir : null;
        if (run.Program.Length == 0) throw new UsageError("no PROGRAM to run (see umlmicro run --help)");
        var program = LookupProgram(run.Program, Value(env, "PATH"), workDir ?? defaultCwd, mounts)
            ?? throw new UsageError($"{run.Program}: command not found");
        return new GuestStart(program, [run.Program, .. run.Argv], env, workDir, user);
    }

    /// <summary>PROGRAM as a shell in the guest finds it: a name with a slash as is (from <paramref name="cwd"/>), otherwise
    /// the first executable match in <paramref name="path"/>; looked up in the guest's namespace, given as a guest path.</summary>
    public static string? LookupProgram(string program, string? path, string cwd, IReadOnlyList<MountSpec> mounts)
    {
        if (program.Contains('/')) return Candidate(Path.GetFullPath(program, cwd));
        foreach (var dir in (path ?? "/usr/local/bin:/usr/bin:/bin").Split(':'))
            if (Candidate(Path.GetFullPath(Path.Combine(dir.Length == 0 ? "." : dir, program), cwd)) is { } found) return found;
        return null;

        string? Candidate(string guestPath) => HostFile(mounts, guestPath) is { } host && IsExecutableFile(host) ? guestPath : null;
    }

    /// <summary>
    /// The host file behind <paramref name="guestPath"/>, its symlinks followed inside the guest's namespace as the VFS
    /// follows them (an absolute target starts again at the guest's root, <c>..</c> stops there), or null when there is
    /// none. A check made before the guest runs; the guest's own exec goes through the VFS.
    /// </summary>
    internal static string? HostFile(IReadOnlyList<MountSpec> mounts, string guestPath)
    {
        var pending = new Stack<string>(guestPath.Split('/').Reverse());
        string at = "/";
        int links = 0;
        while (pending.TryPop(out var name))
        {
            if (name is "" or ".") continue;
            if (name == "..")
            {
                at = Path.GetDirectoryName(at) ?? "/";
                continue;
            }
            string next = at == "/" ? "/" + name : at + "/" + name;
            var info = new FileInfo(GuestNamespace.HostPath(mounts, next));
            if (info.LinkTarget is { } target)
            {
                if (++links > MaxLinks) return null;
                foreach (var part in target.Split('/').Reverse()) pending.Push(part);
                if (target.StartsWith('/')) at = "/";
                continue;
            }
            if (!info.Exists && !Directory.Exists(info.FullName)) return null;
            at = next;
        }
        return GuestNamespace.HostPath(mounts, at);
    }

    private static bool IsExecutableFile(string p) =>
        File.Exists(p) && (File.GetUnixFileMode(p) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0;

    /// <summary><paramref name="env"/> with each NAME=VALUE of <paramref name="settings"/> replacing or adding NAME.</summary>
    internal static List<string> WithSettings(IEnumerable<string> env, IEnumerable<string> settings)
    {
        var result = env.ToList();
        foreach (var setting in settings)
        {
            string prefix = setting[..(setting.IndexOf('=') + 1)];
            int at = result.FindIndex(e => e.StartsWith(prefix, StringComparison.Ordinal));
            if (at >= 0) result[at] = setting;
            else result.Add(setting);
        }
        return result;
    }

    private static string? Value(IReadOnlyList<string> env, string name) =>
        env.FirstOrDefault(e => e.StartsWith(name + "=", StringComparison.Ordinal))?[(name.Length + 1)..];
}
