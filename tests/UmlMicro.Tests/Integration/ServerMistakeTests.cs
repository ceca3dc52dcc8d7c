namespace UmlMicro.Tests.Integration;

/// <summary>
/// A server's mistake never hangs the supervisor (issue 15, item 6). The Sched server is replaced, as a user would
/// replace it (Servers:Sched:Command), by a Python program that passes every message on to the real one and makes one
/// mistake. Each run must end, within the runner's timeout, with its documented outcome: a fallback (checkpoint refused:
/// no checkpoints), or exit status 125 and one line naming the server and the wire method; --timeout, SIGTERM and
/// SIGINT end a run whose tracer waits for a server that never answers. Nothing may be left running.
/// </summary>
[Collection("serial")]
public sealed class ServerMistakeTests(FixturePrograms fixtures) : IClassFixture<FixturePrograms>, IDisposable
{
    private const int KernelFailureStatus = 125, TimeoutStatus = 124;

    private readonly TempDir _dir = new();
    private readonly RunMarker _marker = new();

    public void Dispose()
    {
        _marker.Dispose();
        _dir.Dispose();
    }

    /// <summary>
    /// The fake server: fake.py REAL STATE MODE METHOD N. It starts REAL and passes lines both ways, except for the Nth
    /// request of METHOD (counted per process), which it:
    /// nomethod — answers "method not found" (every one of them; writes STATE/refused), and after the first the process
    /// dies at its next request;
    /// error — answers with an error object; garbage — answers with a line that is not JSON; null — answers null;
    /// silent — never answers (and writes STATE/stuck);
    /// die — dies on, without answering; a successor (STATE/started exists) answers sched/reserve_pids with its list reversed;
    /// crash — dies on, without answering; a successor answers everything.
    /// </summary>
    private const string FakeServer = """
        import json, os, subprocess, sys, threading
        real, state, mode, method, nth = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
        successor = os.path.exists(os.path.join(state, "started"))
        open(os.path.join(state, "started"), "a").close()
        child = subprocess.Popen([real], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        out, lock, altered = sys.stdout.buffer, threading.Lock(), {}
        def write(line):
            with lock:
                out.write(line)
                out.flush()
        def reply(id, error):
            write((json.dumps({"jsonrpc": "2.0", "id": id, "error": error}) + "\n").encode())
        def down():
            for line in child.stdout:
                msg = json.loads(line)
                what = altered.pop(msg.get("id"), None)
                if what == "garbage":
                    line = b"this is not json\n"
                elif what == "null":
                    msg["result"] = None
                    line = (json.dumps(msg) + "\n").encode()
                elif what == "reverse":
                    msg["result"].reverse()
                    line = (json.dumps(msg) + "\n").encode()
                write(line)
            os._exit(0)
        threading.Thread(target=down, daemon=True).start()
        seen, refused = 0, False
        for line in sys.stdin.buffer:
            msg = json.loads(line)
            if refused and "id" in msg:
                os._exit(1)
            if mode == "die" and successor and msg.get("method") == "sched/reserve_pids":
                altered[msg["id"]] = "reverse"
            if msg.get("method") == method and "id" in msg:
                seen += 1
                if mode == "nomethod":
                    open(os.path.join(state, "refused"), "a").close()
                    reply(msg["id"], {"code": -32601, "message": "Method not found"})
                    refused = not successor
                    continue
                if seen == nth:
                    if mode == "error":
                        reply(msg["id"], {"code": -32000, "message": "the fake server fails here"})
                        continue
                    if mode == "silent":
                        open(os.path.join(state, "stuck"), "a").close()
                        continue
                    if mode in ("die", "crash") and not successor:
                        os._exit(1)
                    if mode in ("garbage", "null"):
                        altered[msg["id"]] = mode
            child.stdin.write(line)
            child.stdin.flush()
        """;

    /// <summary>A run of <paramref name="script"/> whose Sched server makes mistake <paramref name="mode"/> at the Nth <paramref name="method"/>.</summary>
    private RunSpec Spec(string mode, string method, int nth, string script, params (string Key, string Value)[] settings) =>
        Spec(mode, method, nth, new RunSpec(_dir.Path, "sh", ["-c", script]), settings);

    private RunSpec Spec(string mode, string method, int nth, RunSpec spec, params (string Key, string Value)[] settings)
    {
        var fake = _dir.Write("fake.py", FakeServer);
        var state = _dir.MakeDir("state");
        spec = spec with { Environment = _marker.Environment };
        spec.Environment["UMLMICRO_Servers__Sched__Command"] = $"python3 {fake} {Path.Combine(RepoRoot.BinDir(), "Servers.Sched")} {state} {mode} {method} {nth}";
        foreach (var (key, value) in settings) spec.Environment[$"UMLMICRO_{key}"] = value;
        return spec;
    }

    private string State(string name) => Path.Combine(_dir.Path, "state", name);

    /// <summary>The run ended with <paramref name="status"/> and exactly one line on stderr, the supervisor's, which it returns.</summary>
    private static string OneLine(int status, RunResult r)
    {
        Assert.True(r.ExitCode == status, $"expected exit status {status}\n{r}");
        Assert.True(r.StderrLines.Length == 1 && r.Stderr.EndsWith('\n') && r.Stderr.StartsWith("umlmicro: ", StringComparison.Ordinal),
            $"expected exactly one line on stderr, the supervisor's\n{r}");
        Assert.False(r.Stderr.Contains("Exception", StringComparison.Ordinal), $"a stack trace on stderr\n{r}");
        return r.StderrLines[0];
    }

    /// <summary>The one line of a guest ended by a server's mistake: the kernel failure, the server, the wire method.</summary>
    private static string Mistake(RunResult r, string wire)
    {
        var line = OneLine(KernelFailureStatus, r);
        Assert.True(line.StartsWith($"umlmicro: kernel failure, guest ended: sched server: {wire}: ", StringComparison.Ordinal),
            $"the line does not name the server and {wire}\n{r}");
        return line;
    }

    [Fact]
    public void Method_not_found_to_checkpoint_means_no_checkpoints_and_a_restart_replays_everything()
    {
        // Enough forks for Sched's history to reach a checkpoint (about 4 kept messages each); the server that
        // refused it then dies, and its successor is rebuilt from the whole history.
        var r = GuestRunner.Run(Spec("nomethod", "checkpoint", 1, "for i in $(seq 1500); do /bin/true; done; echo done"));

        Assert.True(File.Exists(State("refused")), $"the server was never asked for a checkpoint\n{r}");
        Expect.Success("done\n", r);
        Assert.True(r.Stderr.Length == 0, $"expected nothing on stderr\n{r}");
        _marker.AssertNothingLeft("after the guest ended");
    }

    [Fact]
    public void An_error_answer_ends_the_guest_with_125_and_one_line()
    {
        var line = Mistake(GuestRunner.Run(Spec("error", "sched/parent", 1, "echo $PPID")), "sched/parent");
        Assert.Contains("the fake server fails here", line);
        _marker.AssertNothingLeft("after the guest was ended");
    }

    [Fact]
    public void A_line_that_is_not_json_rpc_ends_the_guest_with_125_and_one_line()
    {
        var line = Mistake(GuestRunner.Run(Spec("garbage", "sched/parent", 1, "echo $PPID")), "sched/parent");
        Assert.Contains("not JSON-RPC", line);
        _marker.AssertNothingLeft("after the guest was ended");
    }

    [Fact]
    public void A_null_where_the_contract_has_a_value_ends_the_guest_with_125_and_one_line()
    {
        // The first fork asks for pids set aside: a null list is no answer the contract allows (docs/contract).
        var line = Mistake(GuestRunner.Run(Spec("null", "sched/reserve_pids", 1, "/bin/true; echo done")), "sched/reserve_pids");
        Assert.Contains("answered null", line);
        _marker.AssertNothingLeft("after the guest was ended");
    }

    [Fact]
    public void A_replay_answered_differently_ends_the_guest_with_125_and_one_line()
    {
        // The server dies when asked for its first checkpoint (on the post sender's thread or the tracer's); the
        // successor gives other pids than the reservation it replays.
        var r = GuestRunner.Run(Spec("die", "checkpoint", 1, "for i in $(seq 1500); do /bin/true; done; echo done"));
        Assert.Contains("as before; its state cannot be rebuilt", Mistake(r, "sched/reserve_pids"));
        _marker.AssertNothingLeft("after the guest was ended");
    }

    [Fact]
    public void A_request_a_restarted_server_leaves_unanswered_too_ends_the_guest_with_125_and_one_line()
    {
        var r = GuestRunner.Run(Spec("silent", "sched/parent", 1, "echo $PPID", ("Servers__CallTimeoutMs", "1000")));
        Assert.Contains("no answer within 1 s, from a restarted server either", Mistake(r, "sched/parent"));
        _marker.AssertNothingLeft("after the guest was ended");
    }

    [Fact]
    public void Timeout_ends_a_guest_whose_server_never_answers()
    {
        var r = GuestRunner.Run(Spec("silent", "sched/parent", 1, "echo $PPID", ("Servers__CallTimeoutMs", "600000")) with { Options = ["--timeout", "2s"] });
        Assert.Contains("--timeout 2s", OneLine(TimeoutStatus, r));
        _marker.AssertNothingLeft("after the timeout");
    }

    [Theory]
    [InlineData(HostProcesses.SIGTERM, "SIGTERM")]
    [InlineData(HostProcesses.SIGINT, "SIGINT")]
    public void A_signal_ends_a_guest_whose_server_never_answers(int signal, string name)
    {
        using var run = GuestRunner.Start(Spec("silent", "sched/parent", 1, "echo $PPID", ("Servers__CallTimeoutMs", "600000")));
        Assert.True(HostProcesses.Eventually(() => File.Exists(State("stuck")), TimeSpan.FromSeconds(30)), "the fake server was never asked sched/parent");
        run.Signal(signal);
        var line = OneLine(128 + signal, run.WaitForExit(TimeSpan.FromSeconds(30)));
        Assert.Contains($"{name} while the kernel waited for the sched server (sched/parent)", line);
        _marker.AssertNothingLeft($"after {name}");
    }

    /// <summary>Two threads spinning on one vCPU (tests/fixtures/spin_pair.c): each says whether the other ran meanwhile.</summary>
    private RunSpec SpinPair() => new(_dir.Path, fixtures["spin_pair"], ["1000"]) { Options = ["--cpus", "1"] };

    private const string BothRan = "thread 0: other ran meanwhile: yes\nthread 1: other ran meanwhile: yes\n";

    [Fact]
    public void A_sched_without_a_run_policy_leaves_the_built_in_round_robin_deciding()
    {
        // "Method not found" to sched/vcpu_tick: the supervisor's own round-robin preempts for the rest of the run.
        var r = GuestRunner.Run(Spec("nomethod", "sched/vcpu_tick", 1, SpinPair(), ("Sched__Policy", "fifo")));
        Assert.True(File.Exists(State("refused")), $"the server was never asked for a decision\n{r}");
        Expect.Success(BothRan, r);
        _marker.AssertNothingLeft("after the guest ended");
    }

    [Fact]
    public void The_guest_goes_on_while_sched_restarts_in_the_middle_of_a_decision()
    {
        var r = GuestRunner.Run(Spec("crash", "sched/vcpu_tick", 3, SpinPair() with { Options = ["--cpus", "1", "--stats"] }, ("Servers__CallTimeoutMs", "1000")));
        Assert.True(r.ExitCode == 0 && r.Stdout == BothRan, $"expected both threads to finish, having run by turns\n{r}");
        // The kernel's own round-robin decided while the server was restarting (the restart may still be under way
        // when the stats are written, on a loaded machine).
        var held = System.Text.RegularExpressions.Regex.Match(r.Stderr, @"(\d+) ticks held by the kernel");
        Assert.True(held.Success && int.Parse(held.Groups[1].Value) > 0, $"the built-in hold never decided\n{r}");
        _marker.AssertNothingLeft("after the guest ended");
    }

    [Fact]
    public void An_error_answer_to_a_decision_ends_the_guest_with_125_and_one_line()
    {
        var line = Mistake(GuestRunner.Run(Spec("error", "sched/vcpu_tick", 1, SpinPair())), "sched/vcpu_tick");
        Assert.Contains("the fake server fails here", line);
        _marker.AssertNothingLeft("after the guest was ended");
    }
}
