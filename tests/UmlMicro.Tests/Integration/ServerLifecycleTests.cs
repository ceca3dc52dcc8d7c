namespace UmlMicro.Tests.Integration;

/// <summary>
/// The kernel's server processes: started beside the supervisor, gone with it, whatever way it ends; and when
/// pid 1 ends, every other guest process goes too. Every run here carries a marker in its environment, which
/// the supervisor, its servers and its guests inherit, so that what a run leaves behind can be found in /proc
/// even after the supervisor is gone (other test projects start their own servers meanwhile).
/// </summary>
[Collection("serial")]
public sealed class ServerLifecycleTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly RunMarker _marker = new();

    public void Dispose()
    {
        // Whatever a failed test left behind is killed, so it does not disturb the next one.
        _marker.Dispose();
        _dir.Dispose();
    }

    private RunSpec Spec(string program, params string[] args) =>
        new(_dir.Path, program, args) { Environment = _marker.Environment };


    private static readonly string[] ServerNames = ["Servers.Vfs", "Servers.Mm", "Servers.Sched"];

    [Fact]
    public void While_a_guest_runs_the_three_servers_are_children_of_the_supervisor_and_after_it_none_is_left()
    {
        using var run = GuestRunner.Start(Spec("sh", "-c", "echo ready; read line; echo \"got $line\"") with { KeepStdinOpen = true });
        run.WaitForStdout("ready\n", TimeSpan.FromSeconds(30));

        var children = HostProcesses.All().Where(p => p.PPid == run.Pid).ToList();
        foreach (var name in ServerNames)
            Assert.True(children.Count(c => c.Comm == name && c.State != 'Z') == 1,
                $"expected one {name} child of the supervisor (pid {run.Pid}); its children: " +
                string.Join(", ", children.Select(c => $"{c.Pid} {c.Comm}")));

        run.StandardInput.WriteLine("go");
        run.StandardInput.Close();
        var r = run.WaitForExit(TimeSpan.FromSeconds(30));
        Expect.Success("ready\ngot go\n", r);
        _marker.AssertNothingLeft("after the guest ended");
    }

    [Fact]
    public void When_pid_1_ends_every_other_guest_process_is_killed()
    {
        // Background processes of pid 1, one of them in its own session (it would survive a hangup).
        var r = GuestRunner.Run(Spec("sh", "-c", "sleep 300 & setsid sleep 301 & (trap '' TERM HUP; sleep 302) & echo started"));
        Expect.Success("started\n", r);
        _marker.AssertNothingLeft("after pid 1 exited");
    }

    [Fact]
    public void A_server_command_that_does_not_exist_is_exit_2_with_one_line_and_leaves_no_server()
    {
        var file = Config(c => c["Servers"]!["Vfs"]!["Command"] = "/nonexistent/Servers.Vfs");
        var r = GuestRunner.Run(Spec("true") with { Options = ["--config", file] });
        Assert.Contains("/nonexistent/Servers.Vfs", Expect.UsageError(r));
        _marker.AssertNothingLeft("after the failed start");
    }

    /// <summary>A --config file: the default configuration with <paramref name="change"/> applied.</summary>
    private string Config(Action<System.Text.Json.Nodes.JsonNode> change)
    {
        var config = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(RepoRoot.BinDir(), "configs", "default.json")))!;
        change(config);
        return _dir.Write($"config-{Guid.NewGuid():N}.json", config.ToJsonString());
    }

    // The Sched server in the VFS's place: it answers hello with the wrong name.
    private string WrongContract() => Config(c => c["Servers"]!["Vfs"]!["Command"] = "{bin}/Servers.Sched");

    // A "server" that never answers hello (and would never exit by itself: it does not read its stdin).
    private string Silent() => Config(c =>
    {
        c["Servers"]!["Mm"]!["Command"] = "/bin/sleep 300";
        c["Servers"]!["HandshakeTimeoutMs"] = 1000;
    });

    [Fact]
    public void A_server_that_speaks_the_wrong_contract_fails_the_run_and_leaves_no_server()
    {
        var r = GuestRunner.Run(Spec("echo", "guest ran") with { Options = ["--config", WrongContract()] });
        Assert.True(r.ExitCode != 0 && r.Stdout.Length == 0, $"the guest ran beside a server of the wrong contract\n{r}");
        _marker.AssertNothingLeft("after the failed handshake");
    }

    [Fact]
    public void A_server_that_speaks_the_wrong_contract_is_exit_2_with_one_line()
    {
        Assert.Contains("vfs", Expect.UsageError(GuestRunner.Run(Spec("true") with { Options = ["--config", WrongContract()] })));
    }

    [Fact]
    public void A_server_that_never_answers_fails_the_run_and_leaves_nothing()
    {
        var r = GuestRunner.Run(Spec("echo", "guest ran") with { Options = ["--config", Silent()] });
        Assert.True(r.ExitCode != 0 && r.Stdout.Length == 0, $"the guest ran without its MM server\n{r}");
        _marker.AssertNothingLeft("after the handshake timed out");
    }

    [Fact]
    public void A_server_that_never_answers_is_exit_2_with_one_line()
    {
        Assert.Contains("mm", Expect.UsageError(GuestRunner.Run(Spec("true") with { Options = ["--config", Silent()] })));
    }

    [Fact]
    public void A_killed_supervisor_leaves_no_server_and_no_guest_behind()
    {
        using var run = GuestRunner.Start(Spec("sh", "-c", "sleep 300 & echo ready; wait"));
        run.WaitForStdout("ready\n", TimeSpan.FromSeconds(30));
        Assert.True(_marker.Leftovers().Count >= 5, "expected supervisor, three servers, sh and sleep to carry the marker");
        run.Signal(HostProcesses.SIGKILL);
        run.WaitForExit(TimeSpan.FromSeconds(30));
        _marker.AssertNothingLeft("after SIGKILL of the supervisor");
    }

    [Fact]
    public void After_a_signal_passed_to_pid_1_nothing_is_left()
    {
        using var run = GuestRunner.Start(Spec("sh", "-c", "sleep 300 & sleep 301 & echo ready; wait"));
        run.WaitForStdout("ready\n", TimeSpan.FromSeconds(30));
        run.Signal(HostProcesses.SIGINT);
        Expect.ExitCode(130, run.WaitForExit(TimeSpan.FromSeconds(30)));
        _marker.AssertNothingLeft("after SIGINT ended pid 1");
    }
}
