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

    /// <summary>What a login gives a guest that an image's Env does not: a search path.</summary>
    private const string DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    /// <param name="image">The config of the image that is the guest's root (null: none): the defaults of a container
    /// runtime, which the command line overrides.</param>
    /// <param name="mounts">The guest's namespace (<see cref="GuestNamespace.MountsFor"/>): its root first.</param>
    /// <param name="defaultCwd">Where the guest starts unless <paramref name="guest"/> or the image says.</param>
    /// <param name="inherited">The environment the supervisor started with: the guest's, unless an image is its root.</param>
    public static GuestStart Resolve(RunOptions run, GuestSection guest, Images.ImageConfig? image, IReadOnlyList<MountSpec> mounts, string defaultCwd,
        IReadOnlyList<string> inherited)
    {
        uint uid = Native.Interop.geteuid();
        string userSpec = guest.User.Length > 0 ? guest.User
            : image?.User is { Length: > 0 } imageUser && uid == 0 ? imageUser // a caller that is not root runs an image as itself
            : "";
        var user = userSpec.Length > 0 ? GuestUser.Resolve(userSpec, mounts[0].Source) : null;
        if (user is not null && uid != 0 && (user.Uid != uid || user.Gid != Native.Interop.getegid()))
            throw new UsageError($"--user {guest.User}: only root may start the guest as another user (the guest's user namespace maps only uid {uid})");

        var env = image is null ? WithSettings(inherited, guest.Env) : WithSettings(ImageEnvironment(image, inherited, user), guest.Env);
        string? workDir = guest.WorkDir.Length > 0 ? guest.WorkDir : image?.WorkingDir is { Length: > 0 } w ? w : null;

        // An image's Entrypoint comes first, then PROGRAM and its arguments or else its Cmd, as docker run has them.
        List<string> command = [.. image?.Entrypoint ?? [], .. run.Program.Length > 0 ? [run.Program, .. run.Argv] : image?.Cmd ?? []];
        if (command.Count == 0)
            throw new UsageError(image is null ? "no PROGRAM to run (see umlmicro run --help)" : "no PROGRAM to run, and the image names no command");
        var program = LookupProgram(command[0], Value(env, "PATH"), workDir ?? defaultCwd, mounts)
            ?? throw new UsageError($"{command[0]}: command not found");
        return new GuestStart(program, command, env, workDir, user);
    }

    /// <summary>An image's guest starts with the image's environment, not the caller's: its Env (a search path if it has
    /// none), the caller's terminal type, and the user's home.</summary>
    private static List<string> ImageEnvironment(Images.ImageConfig image, IReadOnlyList<string> inherited, GuestUser? user)
    {
        var env = (image.Env ?? []).ToList();
        if (Value(env, "PATH") is null) env.Insert(0, DefaultPath);
        if (Value(env, "HOME") is null) env.Add($"HOME={user?.Home ?? "/root"}");
        if (Value(env, "TERM") is null && Value(inherited, "TERM") is { } term) env.Add($"TERM={term}");
        return env;
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
            // Natively, by the names' own bytes (PathBytes): .NET's file calls would encode a byte that is not UTF-8
            // as three.
            string host = GuestNamespace.HostPath(mounts, next);
            if (Native.Interop.ReadLink(host) is { } target)
            {
                if (++links > MaxLinks) return null;
                foreach (var part in target.Split('/').Reverse()) pending.Push(part);
                if (target.StartsWith('/')) at = "/";
                continue;
            }
            if (!Native.Interop.Exists(host)) return null;
            at = next;
        }
        return GuestNamespace.HostPath(mounts, at);
    }

    private static bool IsExecutableFile(string p) => Native.Interop.IsExecutableFile(p);

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
