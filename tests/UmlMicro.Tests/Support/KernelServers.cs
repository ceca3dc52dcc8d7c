namespace UmlMicro.Tests;

/// <summary>
/// The server processes of a running supervisor — its children Servers.Vfs, Servers.Mm and Servers.Sched — for
/// tests that kill them. Found in /proc by parent and name, as the chaos harness (tests/chaos/run.sh) finds them.
/// </summary>
public static class KernelServers
{
    public const string Vfs = "Servers.Vfs", Mm = "Servers.Mm", Sched = "Servers.Sched";

    /// <summary>The live (not zombie) child of the supervisor named <paramref name="name"/>, or null.</summary>
    public static HostProcesses.Info? Find(int supervisorPid, string name) =>
        HostProcesses.All().FirstOrDefault(p => p.PPid == supervisorPid && p.Comm == name && p.State is not ('Z' or 'X'));

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

    /// <summary>
    /// Waits until the supervisor runs a live <paramref name="name"/> other than <paramref name="killedPid"/> (its
    /// restarted successor) and returns it; null when the supervisor exited first or none came within
    /// <paramref name="within"/> (a bound for a kernel that never restarts, not a measurement).
    /// </summary>
    public static HostProcesses.Info? WaitForSuccessor(RunningProcess run, string name, int killedPid, TimeSpan within)
    {
        HostProcesses.Info? successor = null;
        HostProcesses.Eventually(() =>
        {
            successor = Find(run.Pid, name) is { } s && s.Pid != killedPid ? s : null;
            return successor is not null || run.HasExited;
        }, within);
        return successor;
    }

    public static string Children(int pid) =>
        string.Join(", ", HostProcesses.All().Where(p => p.PPid == pid).Select(p => $"{p.Pid} {p.Comm} ({p.State})"));
}
