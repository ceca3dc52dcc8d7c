namespace UmlMicro.Supervisor.Cli;

/// <summary>
/// How guest pid 1 starts: the program (a guest path) and its arguments, its environment, the guest directory it starts
/// in (null: the default of <see cref="GuestNamespace"/>) and its user (null: the caller's).
/// </summary>
internal sealed record GuestStart(string Program, IReadOnlyList<string> Argv, IReadOnlyList<string> Environment, string? WorkDir, GuestUser? User)
{
    /// <param name="inherited">The environment the guest inherits: the supervisor's own, as it started.</param>
    public static GuestStart Resolve(RunOptions run, GuestSection guest, string root, IReadOnlyList<string> inherited)
    {
        var env = WithSettings(inherited, guest.Env);
        var user = guest.User.Length > 0 ? GuestUser.Resolve(guest.User, root) : null;
        if (user is not null && Native.Interop.geteuid() != 0 && (user.Uid != Native.Interop.geteuid() || user.Gid != Native.Interop.getegid()))
            throw new UsageError($"--user {guest.User}: only root may start the guest as another user (the guest's user namespace maps only uid {Native.Interop.geteuid()})");
        string path = Value(env, "PATH") ?? "/usr/local/bin:/usr/bin:/bin";
        var program = RunOptions.LookupProgram(run.Program, path, root) ?? throw new UsageError($"{run.Program}: command not found");
        return new GuestStart(program, [run.Program, .. run.Argv], env, guest.WorkDir.Length > 0 ? guest.WorkDir : null, user);
    }

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
