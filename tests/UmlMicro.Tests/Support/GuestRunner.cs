using System.Diagnostics;
using System.Text;

namespace UmlMicro.Tests;

/// <summary>What a finished run produced.</summary>
public sealed record RunResult(string Command, int ExitCode, string Stdout, string Stderr)
{
    /// <summary>Every line of stdout, without the final newline's empty line.</summary>
    public string[] StdoutLines => Lines(Stdout);
    public string[] StderrLines => Lines(Stderr);

    public static string[] Lines(string text) =>
        text.Length == 0 ? [] : text.TrimEnd('\n').Split('\n');

    /// <summary>For assertion messages: the command with everything it printed.</summary>
    public override string ToString() =>
        $"$ {Command}\n[exit {ExitCode}]\n--- stdout ---\n{Stdout}\n--- stderr ---\n{Stderr}";
}

/// <summary>
/// Runs the built supervisor (<c>build/&lt;Configuration&gt;/umlmicro</c>, started directly, not through the
/// repository's script) or a program natively, with a clean, explicit environment, in a given working
/// directory, capturing stdout and stderr, and killing the whole process tree when a run outlives its timeout.
/// </summary>
public static class GuestRunner
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(60);

    public static string Supervisor => Path.Combine(RepoRoot.BinDir(), "umlmicro");

    /// <summary>The environment every run gets, and nothing else (plus what a test adds).</summary>
    public static Dictionary<string, string> BaseEnvironment()
    {
        var env = new Dictionary<string, string>
        {
            ["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            ["HOME"] = Environment.GetEnvironmentVariable("HOME") is { Length: > 0 } home ? home : "/root",
            ["LC_ALL"] = "C",
        };
        // The suite runs in every trap mode: UMLMICRO_Kernel__Mode=sysemu dotnet test ... (the supervisor reads it).
        if (Environment.GetEnvironmentVariable("UMLMICRO_Kernel__Mode") is { Length: > 0 } mode) env["UMLMICRO_Kernel__Mode"] = mode;
        // And against another server: UMLMICRO_Servers__Sched__Command='python3 /abs/examples/sched-py/sched.py' dotnet test ...
        // (tests/run.sh runs a few classes so against the example Sched server; a test that sets its own still wins).
        foreach (var server in new[] { "Vfs", "Mm", "Sched" })
            if (Environment.GetEnvironmentVariable($"UMLMICRO_Servers__{server}__Command") is { Length: > 0 } command)
                env[$"UMLMICRO_Servers__{server}__Command"] = command;
        // The supervisor is an apphost: it must find the runtime this test runs on even when that is not in a
        // default location. DOTNET_ROOT is harmless for a guest (and native runs get it too).
        var runtimeDir = Path.GetDirectoryName(typeof(object).Assembly.Location);
        var root = runtimeDir is null ? null : Path.GetFullPath(Path.Combine(runtimeDir, "..", "..", ".."));
        if (root is not null && File.Exists(Path.Combine(root, "dotnet"))) env["DOTNET_ROOT"] = root;
        return env;
    }

    /// <summary><c>umlmicro run [options] -- program args...</c></summary>
    public static RunResult Run(string workDir, IEnumerable<string> options, string program, params string[] args) =>
        Run(new RunSpec(workDir, program, args) { Options = options.ToArray() });

    /// <summary><c>umlmicro run -- program args...</c></summary>
    public static RunResult Run(string workDir, string program, params string[] args) =>
        Run(new RunSpec(workDir, program, args));

    public static RunResult Run(RunSpec spec)
    {
        using var p = Start(spec);
        return p.WaitForExit(spec.Timeout);
    }

    /// <summary>The same program natively, with the same environment and directory.</summary>
    public static RunResult Native(string workDir, string program, params string[] args) =>
        Native(new RunSpec(workDir, program, args));

    public static RunResult Native(RunSpec spec)
    {
        using var p = StartNative(spec);
        return p.WaitForExit(spec.Timeout);
    }

    /// <summary>Raw supervisor command line (for CLI tests): <c>umlmicro ARGS...</c>.</summary>
    public static RunResult Supervise(string workDir, params string[] supervisorArgs)
    {
        using var p = RunningProcess.Start(Supervisor, supervisorArgs, workDir, BaseEnvironment(), null);
        return p.WaitForExit(DefaultTimeout);
    }

    public static RunningProcess Start(RunSpec spec)
    {
        var argv = new List<string> { "run" };
        argv.AddRange(spec.Options);
        if (spec.Program.Length > 0) // none: the image's command
        {
            argv.Add("--");
            argv.Add(spec.Program);
            argv.AddRange(spec.Args);
        }
        return RunningProcess.Start(Supervisor, argv, spec.WorkDir, Env(spec), spec.Stdin, spec.KeepStdinOpen);
    }

    public static RunningProcess StartNative(RunSpec spec) =>
        RunningProcess.Start(spec.Program, spec.Args, spec.WorkDir, Env(spec), spec.Stdin, spec.KeepStdinOpen);

    private static Dictionary<string, string> Env(RunSpec spec)
    {
        var env = BaseEnvironment();
        foreach (var (k, v) in spec.Environment) env[k] = v;
        return env;
    }
}

/// <summary>One run: program, arguments, directory, and optionally supervisor options, stdin and extra environment.</summary>
public sealed record RunSpec(string WorkDir, string Program, string[] Args)
{
    public string[] Options { get; init; } = [];
    /// <summary>Written to stdin, which is then closed; null: stdin is closed at once (the guest reads EOF).</summary>
    public string? Stdin { get; init; }
    /// <summary>Leave stdin open for the test to write to (<see cref="RunningProcess.StandardInput"/>).</summary>
    public bool KeepStdinOpen { get; init; }
    public Dictionary<string, string> Environment { get; init; } = [];
    public TimeSpan Timeout { get; init; } = GuestRunner.DefaultTimeout;
}

/// <summary>
/// A started process whose stdout and stderr are collected as they come. Disposing it kills the process tree if
/// it still runs.
/// </summary>
public sealed class RunningProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();
    private readonly object _gate = new();
    private readonly TaskCompletionSource _stdoutDone = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _stderrDone = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly string _command;

    private RunningProcess(Process process, string command)
    {
        _process = process;
        _command = command;
    }

    public int Pid => _process.Id;
    public bool HasExited => _process.HasExited;
    public StreamWriter StandardInput => _process.StandardInput;

    public string StdoutSoFar => Snapshot(_stdout);

    /// <summary>Sends signal <paramref name="sig"/> to the process itself (not its tree).</summary>
    public void Signal(int sig) => HostProcesses.Signal(_process.Id, sig);

    public static RunningProcess Start(string program, IEnumerable<string> args, string workDir,
        IReadOnlyDictionary<string, string> env, string? stdin, bool keepStdinOpen = false)
    {
        var psi = new ProcessStartInfo(program)
        {
            UseShellExecute = false,
            WorkingDirectory = workDir,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment.Clear();
        foreach (var (k, v) in env) psi.Environment[k] = v;

        var command = string.Join(' ', new[] { program }.Concat(psi.ArgumentList).Select(Quote));
        var process = new Process { StartInfo = psi };
        process.Start();
        var rp = new RunningProcess(process, command);
        // Read raw characters, not lines: what a user sees includes whether the last line ends with a newline.
        rp.Pump(process.StandardOutput, rp._stdout, rp._stdoutDone);
        rp.Pump(process.StandardError, rp._stderr, rp._stderrDone);
        if (!keepStdinOpen)
        {
            try
            {
                if (stdin is not null) process.StandardInput.Write(stdin);
                process.StandardInput.Close();
            }
            catch (IOException) { } // the program exited without reading its stdin
        }
        return rp;
    }

    private void Pump(StreamReader reader, StringBuilder into, TaskCompletionSource done)
    {
        var thread = new Thread(() =>
        {
            var buf = new char[4096];
            try
            {
                int n;
                while ((n = reader.Read(buf, 0, buf.Length)) > 0)
                    lock (_gate)
                    {
                        into.Append(buf, 0, n);
                        Monitor.PulseAll(_gate);
                    }
            }
            catch (IOException) { }
            catch (ObjectDisposedException) { }
            finally
            {
                done.TrySetResult();
                lock (_gate) Monitor.PulseAll(_gate);
            }
        }) { IsBackground = true, Name = "output pump" };
        thread.Start();
    }

    /// <summary>Waits until stdout contains <paramref name="text"/>; fails (with what was printed) if the process ends first or time runs out.</summary>
    public void WaitForStdout(string text, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        lock (_gate)
        {
            while (!_stdout.ToString().Contains(text, StringComparison.Ordinal))
            {
                var left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero || _stdoutDone.Task.IsCompleted) break;
                Monitor.Wait(_gate, left);
            }
            if (_stdout.ToString().Contains(text, StringComparison.Ordinal)) return;
        }
        var (so, se) = (Snapshot(_stdout), Snapshot(_stderr));
        Kill();
        Assert.Fail($"'{text}' never appeared on stdout of: {_command}\n--- stdout ---\n{so}\n--- stderr ---\n{se}");
    }

    /// <summary>Waits for the process and for the end of its output; on timeout kills the tree and fails.</summary>
    public RunResult WaitForExit(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout))
        {
            Kill();
            _process.WaitForExit(TimeSpan.FromSeconds(10));
            Assert.Fail($"timed out after {timeout.TotalSeconds:0}s (process tree killed): {_command}\n" +
                        $"--- stdout ---\n{Snapshot(_stdout)}\n--- stderr ---\n{Snapshot(_stderr)}");
        }
        // The streams end when every holder of the pipes' write ends is gone, which a leaked grandchild could delay.
        if (!Task.WaitAll([_stdoutDone.Task, _stderrDone.Task], timeout))
            Assert.Fail($"stdout/stderr still open {timeout.TotalSeconds:0}s after the process exited " +
                        $"(a descendant outlived it): {_command}\n--- stdout ---\n{Snapshot(_stdout)}\n--- stderr ---\n{Snapshot(_stderr)}");
        _process.WaitForExit();
        return new RunResult(_command, _process.ExitCode, Snapshot(_stdout), Snapshot(_stderr));
    }

    private string Snapshot(StringBuilder sb) { lock (_gate) return sb.ToString(); }

    public void Kill()
    {
        try { if (!_process.HasExited) _process.Kill(entireProcessTree: true); }
        catch (InvalidOperationException) { }
        catch (System.ComponentModel.Win32Exception) { }
    }

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }

    private static string Quote(string s) =>
        s.Length > 0 && s.All(c => char.IsLetterOrDigit(c) || "-_./=:,+@%".Contains(c)) ? s : "'" + s.Replace("'", "'\\''") + "'";
}
