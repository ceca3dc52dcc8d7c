namespace UmlMicro.Tests;

/// <summary>
/// The server processes of a running supervisor — its children Servers.Vfs, Servers.Mm and Servers.Sched — for
/// tests that kill them. Found in /proc by parent and name, as the chaos harness (tests/chaos/run.sh) finds them.
/// </summary>
public static class KernelServers
{
    public const string Vfs = "Servers.Vfs", Mm = "Servers.Mm", Sched = "Servers.Sched";

    /// <summary>
    /// The server <paramref name="name"/> in use: the oldest live (not zombie) child of the supervisor with that name,
    /// or null. After a server died once the supervisor keeps a standby successor started beside the one in use; it
    /// is always the younger.
    /// </summary>
    public static HostProcesses.Info? Find(int supervisorPid, string name) =>
        HostProcesses.All()
            .Where(p => p.PPid == supervisorPid && p.Comm == name && p.State is not ('Z' or 'X'))
            .Select(p => (Process: p, Start: StartTime(p.Pid)))
            .Where(x => x.Start is not null)
            .OrderBy(x => x.Start).ThenBy(x => x.Process.Pid)
            .Select(x => x.Process)
            .FirstOrDefault();

    /// <summary>When a process started (clock ticks after boot: /proc/PID/stat field 22), or null when it is gone.</summary>
    private static long? StartTime(int pid)
    {
        string stat;
        try { stat = File.ReadAllText($"/proc/{pid}/stat"); }
        catch (IOException) { return null; }
        // Fields after the command name, which ends at the last ')': state is field 3, starttime field 22.
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return long.Parse(fields[19]);
    }

    /// <summary>
    /// The guest still runs: a live child of the supervisor that is neither a server nor <c>umlmicro-launch</c> (the
    /// launcher before its exec, or the vCPU ticker) nor a server being started (a child that has not exec'd yet
    /// still runs the supervisor's binary, under the name of a .NET thread) — guest pid 1.
    /// </summary>
    public static bool GuestRunning(int supervisorPid)
    {
        var supervisorExe = Exe(supervisorPid);
        return HostProcesses.All().Any(p => p.PPid == supervisorPid && p.State is not ('Z' or 'X') &&
                                            !p.Comm.StartsWith("Servers.", StringComparison.Ordinal) && p.Comm != "umlmicro-launch" &&
                                            Exe(p.Pid) is { } exe && exe != supervisorExe);
    }

    /// <summary>The program a process runs (/proc/PID/exe), or null when it is gone.</summary>
    private static string? Exe(int pid)
    {
        try { return new FileInfo($"/proc/{pid}/exe").LinkTarget; }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }

    /// <summary>
    /// SIGKILLs the server <paramref name="name"/> of <paramref name="run"/> while its guest runs and returns the
    /// killed pid. Fails the test when the supervisor has no live server of that name or its guest already ended
    /// (a kill then would not test what the caller means to test).
    /// </summary>
    public static int Kill(RunningProcess run, string name)
    {
        var server = Find(run.Pid, name);
        Assert.True(server is not null, $"the supervisor (pid {run.Pid}) has no live {name} child to kill; its children: {Children(run.Pid)}\n" +
                                        $"--- stdout so far ---\n{run.StdoutSoFar}");
        Assert.True(GuestRunning(run.Pid), $"the guest of supervisor {run.Pid} already ended before {name} could be killed");
        HostProcesses.Signal(server!.Pid, HostProcesses.SIGKILL);
        return server.Pid;
    }

    public static string Children(int pid) =>
        string.Join(", ", HostProcesses.All().Where(p => p.PPid == pid).Select(p => $"{p.Pid} {p.Comm} ({p.State})"));
}
