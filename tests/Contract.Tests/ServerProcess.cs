using System.Diagnostics;
using System.Text;

namespace UmlMicro.ContractTests;

/// <summary>
/// A server under test, run as its own process from its command line: UMLMICRO_VFS_CMD, UMLMICRO_MM_CMD or
/// UMLMICRO_SCHED_CMD when set (any program that speaks the contract), otherwise the executable this repository
/// builds into build/Release or build/Debug.
/// </summary>
public sealed class ServerProcess : IDisposable
{
    private readonly Process process;
    private readonly StringBuilder stderr = new();

    private ServerProcess(string commandLine)
    {
        // The shell parses the command line (quotes and all) and exec's it, so the pid is the server's own.
        var start = new ProcessStartInfo("/bin/sh")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            StandardInputEncoding = new UTF8Encoding(false),
            StandardOutputEncoding = new UTF8Encoding(false),
            UseShellExecute = false,
            // The kit (tests/server-kit.sh) runs a command line given relative to where it was started.
            WorkingDirectory = Environment.GetEnvironmentVariable("UMLMICRO_KIT_CWD") ?? "",
        };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add("exec " + commandLine);
        process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {commandLine}");
        process.ErrorDataReceived += (_, e) =>
        {
            lock (stderr)
                stderr.AppendLine(e.Data);
        };
        process.BeginErrorReadLine();
        CommandLine = commandLine;
    }

    public string CommandLine { get; }

    public int Pid => process.Id;

    public int ExitCode => process.ExitCode;

    /// <summary>The server's stdin: what the client sends.</summary>
    public Stream Input => process.StandardInput.BaseStream;

    /// <summary>The server's stdout: what the client receives.</summary>
    public Stream Output => process.StandardOutput.BaseStream;

    /// <summary>The server's stdout as text, for tests that read the wire line by line.</summary>
    public StreamReader OutputReader => process.StandardOutput;

    /// <summary>What the server logged on stderr so far, for failure messages.</summary>
    public string Log
    {
        get
        {
            lock (stderr)
                return stderr.ToString();
        }
    }

    /// <param name="name">Vfs, Mm or Sched.</param>
    public static ServerProcess Start(string name) => new(FindCommandLine(name));

    public bool WaitForExit(TimeSpan timeout)
    {
        if (!process.WaitForExit(timeout))
            return false;
        process.WaitForExit(); // only the wait without a timeout also waits for the last of stderr
        return true;
    }

    public void Dispose()
    {
        if (!process.HasExited)
            process.Kill(entireProcessTree: true);
        process.WaitForExit();
        process.Dispose();
    }

    private static string FindCommandLine(string name)
    {
        string variable = $"UMLMICRO_{name.ToUpperInvariant()}_CMD";
        string? fromEnvironment = Environment.GetEnvironmentVariable(variable);
        if (!string.IsNullOrWhiteSpace(fromEnvironment))
            return fromEnvironment;

        string root = RepositoryRoot();
        foreach (string configuration in new[] { "Release", "Debug" })
        {
            string executable = Path.Combine(root, "build", configuration, "Servers." + name);
            if (File.Exists(executable))
                return "'" + executable.Replace("'", "'\\''") + "'";
        }
        throw new InvalidOperationException(
            $"No Servers.{name} executable in {root}/build/Release or {root}/build/Debug. " +
            $"Build it first (dotnet build Servers.{name}), or set {variable} to the command line of a server to test.");
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "UmlMicro.sln")))
                return dir.FullName;
        }
        throw new InvalidOperationException($"No UmlMicro.sln above {AppContext.BaseDirectory}: cannot find the built servers.");
    }
}
