namespace UmlMicro.Tests.Integration;

/// <summary>
/// Fault isolation (issue 7): a server killed with SIGKILL while a guest runs is restarted and the guest never
/// notices; a server that keeps dying is a crash loop, which ends the guest with exit status 123 and one line on
/// stderr once the restart budget (Servers:RestartLimit per Servers:RestartWindowSeconds) is spent. The small
/// version of the chaos harness (tests/chaos/run.sh), which kills at random moments over many runs.
/// Every run carries a marker in its environment, so that whatever it leaves behind is found afterwards.
/// </summary>
[Collection("serial")]
public sealed class ChaosTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly RunMarker _marker = new();

    /// <summary>The crash loop's budget; its window is far longer than the test runs, so speed cannot matter.</summary>
    private const int RestartLimit = 2;

    /// <summary>The exit status of a guest ended by a crash loop.</summary>
    private const int CrashLoopStatus = 123;

    public void Dispose()
    {
        _marker.Dispose();
        _dir.Dispose();
    }

    private RunSpec Spec(string script) =>
        new(_dir.Path, "sh", ["-c", script]) { Environment = _marker.Environment };


    private static string OneTo(int n) => string.Concat(Enumerable.Range(1, n).Select(i => $"{i}\n"));

    [Fact]
    public void The_200_line_loop_prints_exactly_1_to_200_while_each_server_is_killed_once()
    {
        using var run = GuestRunner.Start(Spec("for i in $(seq 200); do echo $i > f; cat f; done"));
        var killed = new List<string>();
        // Each server is killed once the loop has printed line 10, 30 or 50: the line proves the loop runs, and at
        // least 150 iterations, each a fork and exec of cat, are still to come. Kill checks the guest is alive.
        foreach (var (server, line) in new[] { (KernelServers.Vfs, 10), (KernelServers.Mm, 30), (KernelServers.Sched, 50) })
        {
            run.WaitForStdout($"\n{line}\n", TimeSpan.FromSeconds(60));
            killed.Add($"{server} (pid {KernelServers.Kill(run, server)}) after line {line}");
        }
        var r = run.WaitForExit(TimeSpan.FromSeconds(120));

        var what = $"killed during the loop: {string.Join(", ", killed)}";
        Assert.True(r.Stdout == OneTo(200), $"expected exactly 1..200 on stdout; {what}\n{r}");
        Assert.True(r.ExitCode == 0, $"expected exit status 0; {what}\n{r}");
        // The guest wrote nothing to stderr; only the supervisor's own notes ("umlmicro: ...") may be there.
        Assert.True(r.StderrLines.All(l => l.StartsWith("umlmicro: ", StringComparison.Ordinal)), $"the guest printed errors; {what}\n{r}");
        Assert.Equal("200\n", File.ReadAllText(_dir.File("f")));
        _marker.AssertNothingLeft("after the loop ended");
    }

    [Fact]
    public void A_crash_loop_beyond_the_restart_budget_ends_the_guest_with_123_and_one_line_and_leaves_nothing()
    {
        // The loop runs until the supervisor ends it, or until the file `stop` exists (made below only when the
        // kernel fails to end it, so that a failing run still ends and shows what happened).
        var spec = Spec("i=0; while [ ! -e stop ]; do i=$((i + 1)); echo $i > f; cat f; done");
        spec.Environment["UMLMICRO_Servers__RestartLimit"] = $"{RestartLimit}";
        spec.Environment["UMLMICRO_Servers__RestartWindowSeconds"] = "3600";
        using var run = GuestRunner.Start(spec);
        run.WaitForStdout("\n5\n", TimeSpan.FromSeconds(60));

        // Killed RestartLimit + 1 times; each next kill waits until the guest has gone on: every iteration of its loop
        // calls the VFS, and the supervisor restarts a dead server at its next call, holding the guest until the
        // successor is restored, so two more lines mean the restart is complete.
        // The last kill is one too many: the guest must end (a loop that goes on never does by itself). Whether it
        // printed a line or two more first is no sign either way: lines written before the kill may still be on
        // their way to this test's reader.
        var kills = new List<int>();
        while (true)
        {
            kills.Add(KernelServers.Kill(run, KernelServers.Vfs));
            if (kills.Count == RestartLimit + 1) break;
            // Counted once the kill is done, so lines the guest printed while the server was being found do not
            // count as its going on.
            int lines = Lines(run);
            if (!GoesOn(run, lines + 2))
                Assert.Fail(run.HasExited
                    ? $"the guest ended after kill {kills.Count} of {RestartLimit + 1} (budget {RestartLimit})\n{EndRun(run)}"
                    : $"the guest neither went on nor ended within 30 s of kill {kills.Count}\n{EndRun(run)}");
        }
        if (!HostProcesses.Eventually(() => run.HasExited, TimeSpan.FromSeconds(30)))
            Assert.Fail($"the budget of {RestartLimit} restarts was not enforced: the guest went on for 30 s after " +
                        $"{kills.Count} kills of {KernelServers.Vfs}\n{EndRun(run)}");
        var r = run.WaitForExit(TimeSpan.FromSeconds(30));

        Assert.True(r.ExitCode == CrashLoopStatus, $"expected exit status {CrashLoopStatus} for a crash loop\n{r}");
        Assert.True(r.StderrLines.Length == 1 && r.Stderr.EndsWith('\n') && r.Stderr.StartsWith("umlmicro: ", StringComparison.Ordinal),
            $"expected exactly one line on stderr, the supervisor's\n{r}");
        Assert.True(r.Stderr.Contains("vfs", StringComparison.OrdinalIgnoreCase), $"the line does not name the server\n{r}");
        Assert.False(r.Stderr.Contains("Exception", StringComparison.Ordinal), $"a stack trace on stderr\n{r}");
        // What the guest printed before it was ended is intact: 1, 2, 3, ... with no line lost or garbled.
        Assert.True(r.Stdout == OneTo(r.StdoutLines.Length), $"stdout is not a clean prefix of 1, 2, 3, ...\n{r}");
        foreach (var pid in kills)
            Assert.False(HostProcesses.IsAlive(pid), $"killed server {pid} is still alive");
        _marker.AssertNothingLeft("after the crash loop ended the guest");
    }

    private static int Lines(RunningProcess run) => RunResult.Lines(run.StdoutSoFar).Length;

    /// <summary>
    /// Whether the guest printed its line <paramref name="line"/> before it ended; false too when it neither did
    /// nor ended within 30 s (a bound for a kernel that neither restarts nor ends it, not a measurement).
    /// </summary>
    private static bool GoesOn(RunningProcess run, int line)
    {
        HostProcesses.Eventually(() => Lines(run) >= line || run.HasExited, TimeSpan.FromSeconds(30));
        return Lines(run) >= line;
    }

    /// <summary>Ends a run the kernel did not end: `stop` lets the guest's loop finish by itself.</summary>
    private RunResult EndRun(RunningProcess run)
    {
        File.WriteAllText(_dir.File("stop"), "");
        return run.WaitForExit(TimeSpan.FromSeconds(60));
    }
}
