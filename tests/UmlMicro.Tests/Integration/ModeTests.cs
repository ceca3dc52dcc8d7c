namespace UmlMicro.Tests.Integration;

/// <summary>
/// Every trap path (--mode) gives the guest the same results: the fixtures that probe pids, threads, signals
/// and bad pointers print the same as natively in each.
/// </summary>
public sealed class ModeTests(FixturePrograms fixtures) : IClassFixture<FixturePrograms>, IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData("tt")]
    [InlineData("sysemu")]
    [InlineData("seccomp")]
    public void Each_mode_runs_the_fixtures_as_natively(string mode)
    {
        string[] options = ["--mode", mode];
        foreach (var fixture in new[] { "fork_tree", "threads", "bad_pointers" })
            Expect.SameAsNative(GuestRunner.Native(_dir.Path, fixtures[fixture]), GuestRunner.Run(_dir.Path, options, fixtures[fixture]));

        var probe = GuestRunner.Run(_dir.Path, options, fixtures["pid_probe"], "99999");
        Expect.ExitCode(0, probe);
        Assert.All(probe.StdoutLines, line => Assert.True(line.EndsWith(" ESRCH", StringComparison.Ordinal) || line.EndsWith(" ECHILD", StringComparison.Ordinal), line));

        Expect.Success("1 0\n", GuestRunner.Run(_dir.Path, options, "sh", "-c", "echo $$ $PPID"));
        const string pipeline = "seq 1 1000 | sort -rn | head -3; exit 9";
        Expect.SameAsNative(GuestRunner.Native(_dir.Path, Tools.Busybox, "sh", "-c", pipeline),
                            GuestRunner.Run(_dir.Path, options, Tools.Busybox, "sh", "-c", pipeline));
    }
}
