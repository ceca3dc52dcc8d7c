namespace UmlMicro.Supervisor.Cli;

/// <summary>A usage error: printed as one line, exit status 2.</summary>
public sealed class UsageError(string message) : Exception(message);

/// <summary>`umlmicro run` as typed: the options before PROGRAM as configuration settings, then PROGRAM and its arguments untouched.</summary>
/// <param name="Settings">`--Section:Key=value`, over the configuration file and the environment.</param>
public sealed record RunOptions(string? ConfigFile, IReadOnlyList<string> Settings, string Program, IReadOnlyList<string> Argv)
{
    /// <summary>PROGRAM as a shell in the guest finds it: a name with a slash as is, otherwise the first executable
    /// match in PATH; looked up under the guest's <paramref name="root"/>, and given as a guest path.</summary>
    public static string? LookupProgram(string program, string? path, string root = "/")
    {
        string hostRoot = Path.GetFullPath(root);
        string cwd = hostRoot == "/" ? Environment.CurrentDirectory : "/";
        if (program.Contains('/')) return Candidate(Path.GetFullPath(program, cwd));
        foreach (var dir in (path ?? "/usr/local/bin:/usr/bin:/bin").Split(':'))
            if (Candidate(Path.GetFullPath(Path.Combine(dir.Length == 0 ? "." : dir, program), cwd)) is { } found) return found;
        return null;

        string? Candidate(string guestPath) => IsExecutableFile(hostRoot == "/" ? guestPath : hostRoot + guestPath) ? guestPath : null;
    }

    private static bool IsExecutableFile(string p) =>
        File.Exists(p) && (File.GetUnixFileMode(p) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0;
}
