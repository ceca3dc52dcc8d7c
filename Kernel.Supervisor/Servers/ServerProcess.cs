using System.IO.Pipes;
using Microsoft.Win32.SafeHandles;
using UmlMicro.Supervisor.Native;

namespace UmlMicro.Supervisor.Servers;

/// <summary>
/// A server's host process, speaking over its stdin and stdout. Started with posix_spawnp and reaped with waitpid by
/// the supervisor itself rather than through System.Diagnostics.Process, whose reaping needs the runtime's SIGCHLD
/// handler: the supervisor turns that handler off (see <see cref="Interop.DefaultSigChld"/>), since every ptrace stop
/// of the guest would run it. Its stderr is the supervisor's.
/// </summary>
internal sealed class ServerProcess : IDisposable
{
    private int _reaped;

    public int Id { get; }

    /// <summary>The server's stdin: requests go here.</summary>
    public Stream Input { get; }

    /// <summary>The server's stdout: answers come from here.</summary>
    public Stream Output { get; }

    private ServerProcess(int pid, Stream input, Stream output)
    {
        Id = pid;
        Input = input;
        Output = output;
    }

    /// <summary>Starts <paramref name="argv"/>[0] (looked up in PATH) with the supervisor's environment and <paramref name="extraEnv"/>; null and the errno if it cannot.</summary>
    public static ServerProcess? Start(IReadOnlyList<string> argv, IReadOnlyDictionary<string, string> extraEnv, out int errno)
    {
        var env = new List<string>();
        foreach (System.Collections.DictionaryEntry e in Environment.GetEnvironmentVariables())
        {
            string key = (string)e.Key;
            if (!extraEnv.ContainsKey(key)) env.Add($"{key}={e.Value}");
        }
        env.AddRange(extraEnv.Select(kv => $"{kv.Key}={kv.Value}"));

        if (!Interop.Pipe(out int inRead, out int inWrite)) return Fail(out errno);
        if (!Interop.Pipe(out int outRead, out int outWrite))
        {
            Interop.close(inRead);
            Interop.close(inWrite);
            return Fail(out errno);
        }
        errno = Interop.SpawnWithPipes(argv, env, inRead, outWrite, out int pid);
        // The child has its ends (dup2'd to 0 and 1); the supervisor keeps only the other two.
        Interop.close(inRead);
        Interop.close(outWrite);
        if (errno != 0)
        {
            Interop.close(inWrite);
            Interop.close(outRead);
            return null;
        }
        return new ServerProcess(pid,
            new AnonymousPipeClientStream(PipeDirection.Out, new SafePipeHandle(inWrite, ownsHandle: true)),
            new AnonymousPipeClientStream(PipeDirection.In, new SafePipeHandle(outRead, ownsHandle: true)));
    }

    private static ServerProcess? Fail(out int errno)
    {
        errno = Interop.LastErrno;
        return null;
    }

    /// <summary>It has ended (and is reaped).</summary>
    public bool HasExited
    {
        get
        {
            if (Volatile.Read(ref _reaped) != 0) return true;
            if (!Interop.TryReap(Id)) return false;
            Volatile.Write(ref _reaped, 1);
            return true;
        }
    }

    /// <summary>
    /// SIGKILL to its process group, which it leads (what it started too: a wrapper script's program, which would
    /// otherwise hold the pipes open and the server's end unseen), unless it was reaped already (its pid, and the
    /// group's number, may belong to another process by now).
    /// </summary>
    public void Kill()
    {
        if (HasExited) return;
        Interop.kill(-Id, 9);
        Interop.kill(Id, 9);
    }

    /// <summary>Waits up to <paramref name="timeout"/> for it to end; true once it has (and is reaped).</summary>
    public bool WaitForExit(TimeSpan timeout)
    {
        long start = Environment.TickCount64;
        while (!HasExited)
        {
            if (timeout != Timeout.InfiniteTimeSpan && Environment.TickCount64 - start >= timeout.TotalMilliseconds) return false;
            Thread.Sleep(1);
        }
        return true;
    }

    /// <summary>Closes its stdin: a server takes that as the end of its work.</summary>
    public void CloseInput() => Input.Dispose();

    /// <summary>Lets go of the pipes and kills and reaps the process if it still runs: nothing is left behind.</summary>
    public void Dispose()
    {
        Kill();
        WaitForExit(Timeout.InfiniteTimeSpan);
        Input.Dispose();
        Output.Dispose();
    }
}
