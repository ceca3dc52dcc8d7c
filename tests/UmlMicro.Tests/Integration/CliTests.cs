namespace UmlMicro.Tests.Integration;

/// <summary>The command line and configuration: what a user types and what they get back.</summary>
public sealed class CliTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData("--bogus", "--", "true")]
    [InlineData("-x", "--", "true")]
    [InlineData("--cpus", "0", "--", "true")]
    [InlineData("--cpus", "-3", "--", "true")]
    [InlineData("--cpus", "many", "--", "true")]
    [InlineData("--mode", "warp", "--", "true")]
    [InlineData("--cpus")]
    [InlineData("--trace")]
    [InlineData("--config")]
    [InlineData("--mode")]
    public void A_bad_option_is_exit_2_with_one_line(params string[] argsAfterRun)
    {
        Expect.UsageError(GuestRunner.Supervise(_dir.Path, ["run", .. argsAfterRun]));
    }

    [Fact]
    public void An_unknown_option_is_named_in_the_message()
    {
        var line = Expect.UsageError(GuestRunner.Supervise(_dir.Path, "run", "--bogus", "--", "true"));
        Assert.Contains("--bogus", line);
    }

    [Fact]
    public void An_unknown_command_is_exit_2_with_one_line()
    {
        Expect.UsageError(GuestRunner.Supervise(_dir.Path, "walk", "--", "true"));
        // Without any argument it shows its usage (on stdout) and exits 2.
        var bare = GuestRunner.Supervise(_dir.Path);
        Expect.ExitCode(2, bare);
        Assert.Contains("umlmicro run", bare.Stdout + bare.Stderr);
        Assert.DoesNotContain("Exception", bare.Stdout + bare.Stderr);
    }

    [Fact]
    public void No_program_is_exit_2_with_one_line()
    {
        Expect.UsageError(GuestRunner.Supervise(_dir.Path, "run"));
        Expect.UsageError(GuestRunner.Supervise(_dir.Path, "run", "--"));
        Expect.UsageError(GuestRunner.Supervise(_dir.Path, "run", "--cpus", "1"));
    }

    [Fact]
    public void A_missing_program_is_exit_2_with_one_line_naming_it()
    {
        Assert.Contains("no-such-program-xyz", Expect.UsageError(GuestRunner.Run(_dir.Path, "no-such-program-xyz")));
        Assert.Contains("/no/such/dir/prog", Expect.UsageError(GuestRunner.Run(_dir.Path, "/no/such/dir/prog")));
    }

    [Fact]
    public void Run_help_describes_every_option_and_exits_0()
    {
        foreach (var args in new[] { new[] { "run", "--help" }, ["run", "-h"] })
        {
            var r = GuestRunner.Supervise(_dir.Path, args);
            Expect.ExitCode(0, r);
            var text = r.Stdout + r.Stderr;
            foreach (var option in new[] { "--mode", "--cpus", "--config", "--trace", "--stats" })
                Assert.True(text.Contains(option, StringComparison.Ordinal), $"help does not mention {option}\n{r}");
        }
    }

    [Fact]
    public void Top_level_help_shows_the_run_command_and_exits_0()
    {
        var r = GuestRunner.Supervise(_dir.Path, "--help");
        Expect.ExitCode(0, r);
        Assert.Contains("umlmicro run", r.Stdout);
    }

    [Fact]
    public void Top_level_help_describes_every_option()
    {
        var r = GuestRunner.Supervise(_dir.Path, "--help");
        foreach (var option in new[] { "--mode", "--cpus", "--config", "--trace", "--stats" })
            Assert.True(r.Stdout.Contains(option, StringComparison.Ordinal), $"help does not mention {option}\n{r}");
    }

    [Fact]
    public void Help_ends_with_a_newline()
    {
        foreach (var args in new[] { new[] { "--help" }, ["run", "--help"] })
        {
            var r = GuestRunner.Supervise(_dir.Path, args);
            Assert.True(r.Stdout.EndsWith('\n'), $"help text does not end with a newline\n{r}");
        }
    }

    [Fact]
    public void Completion_is_asked_with_the_suggest_directive()
    {
        var r = GuestRunner.Supervise(_dir.Path, "[suggest:18]", "umlmicro run --tim");
        Expect.Success("--timeout\n", r);
    }

    [Fact]
    public void An_options_value_may_be_joined_to_it()
    {
        Expect.Success("2\n", GuestRunner.Run(_dir.Path, ["--cpus=2"], "nproc"));
    }

    [Fact]
    public void A_missing_config_file_is_exit_2_with_one_line_naming_it()
    {
        var missing = _dir.File("nope.json");
        Assert.Contains(missing, Expect.UsageError(GuestRunner.Run(_dir.Path, ["--config", missing], "true")));
    }

    [Fact]
    public void A_config_that_is_not_json_is_exit_2_with_one_line_naming_it()
    {
        var bad = _dir.Write("bad.json", "{ this is not json");
        Assert.Contains(bad, Expect.UsageError(GuestRunner.Run(_dir.Path, ["--config", bad], "true")));
    }

    [Theory]
    [InlineData("""{ "Kernel": { "Bogus": 1 } }""", "Bogus")]
    [InlineData("""{ "Colonel": { "Cpus": 1 } }""", "Colonel")]
    [InlineData("""{ "Servers": { "Vfs": { "Comand": "x" } } }""", "Comand")]
    public void A_config_with_an_unknown_key_is_exit_2_with_one_line_naming_file_and_key(string json, string key)
    {
        var file = _dir.Write("unknown.json", json);
        var line = Expect.UsageError(GuestRunner.Run(_dir.Path, ["--config", file], "true"));
        Assert.Contains(file, line);
        Assert.Contains(key, line);
    }

    /// <summary>The default configuration (a --config file replaces it) with one value changed.</summary>
    private string ConfigWith(string section, string key, System.Text.Json.Nodes.JsonNode? value)
    {
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(RepoRoot.BinDir(), "configs", "default.json")))!;
        var node = json;
        foreach (var part in section.Split(':')) node = node[part]!;
        node[key] = value;
        return _dir.Write($"config-{Guid.NewGuid():N}.json", json.ToJsonString());
    }

    [Fact]
    public void A_config_with_a_bad_value_is_exit_2_with_one_line()
    {
        Expect.UsageError(GuestRunner.Run(_dir.Path, ["--config", ConfigWith("Kernel", "Cpus", "many")], "true"));
        if (Environment.GetEnvironmentVariable("UMLMICRO_Kernel__Mode") is null) // the mode matrix overrides the file's mode
            Expect.UsageError(GuestRunner.Run(_dir.Path, ["--config", ConfigWith("Kernel", "Mode", "warp")], "true"));
        Expect.UsageError(GuestRunner.Run(_dir.Path, ["--config", ConfigWith("Servers", "HandshakeTimeoutMs", "soon")], "true"));
        Expect.UsageError(GuestRunner.Run(_dir.Path, ["--config", ConfigWith("Servers:Vfs", "Command", "")], "true"));
        Assert.Contains("Sched:Policy", Expect.UsageError(GuestRunner.Run(_dir.Path, ["--config", ConfigWith("Sched", "Policy", "lottery-of-doom")], "true")));
        Assert.Contains("Sched:QuantumMs", Expect.UsageError(GuestRunner.Run(_dir.Path, ["--config", ConfigWith("Sched", "QuantumMs", 0)], "true")));
        Expect.UsageError(GuestRunner.Run(_dir.Path, ["--config", _dir.Write("array.json", "[1, 2]")], "true"));
        Expect.UsageError(GuestRunner.Run(_dir.Path, ["--config", _dir.Write("empty.json", "")], "true"));
    }

    [Fact]
    public void A_config_with_an_out_of_range_cpu_count_is_exit_2_with_one_line()
    {
        Expect.UsageError(GuestRunner.Run(_dir.Path, ["--config", ConfigWith("Kernel", "Cpus", -1)], "nproc"));
        Expect.UsageError(GuestRunner.Run(_dir.Path, ["--config", ConfigWith("Kernel", "Cpus", 5000)], "nproc"));
    }

    [Fact]
    public void A_config_with_a_negative_handshake_timeout_is_exit_2_with_one_line()
    {
        Expect.UsageError(GuestRunner.Run(_dir.Path, ["--config", ConfigWith("Servers", "HandshakeTimeoutMs", -5)], "true"));
    }

    [Fact]
    public void A_valid_config_file_is_used()
    {
        var file = ConfigWith("Kernel", "Cpus", 1);
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(file))!;
        json["Kernel"]!["Hostname"] = "guestbox";
        json["Kernel"]!["Release"] = "9.9.9-test";
        File.WriteAllText(file, json.ToJsonString());
        Expect.Success("1\nguestbox\n9.9.9-test\n", GuestRunner.Run(_dir.Path, ["--config", file], "sh", "-c", "nproc; uname -n; uname -r"));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Nproc_prints_the_cpus_value(int cpus)
    {
        Expect.Success($"{cpus}\n", GuestRunner.Run(_dir.Path, ["--cpus", cpus.ToString()], "nproc"));
    }

    [Fact]
    public void Sched_getaffinity_shows_the_cpus_value()
    {
        Expect.Success("1\n", GuestRunner.Run(_dir.Path, ["--cpus", "1"], Tools.Python3, "-c", "import os; print(len(os.sched_getaffinity(0)))"));
    }

    [Fact]
    public void Without_cpus_the_guest_sees_the_hosts_cpus()
    {
        Expect.SameAsNative(GuestRunner.Native(_dir.Path, "nproc"), GuestRunner.Run(_dir.Path, "nproc"));
    }

    [Fact]
    public void The_environment_overrides_the_config_and_the_command_line_overrides_both()
    {
        var env = new Dictionary<string, string> { ["UMLMICRO_Kernel__Cpus"] = "1" };
        Expect.Success("1\n", GuestRunner.Run(new RunSpec(_dir.Path, "nproc", []) { Environment = env }));
        Expect.Success("2\n", GuestRunner.Run(new RunSpec(_dir.Path, "nproc", []) { Environment = env, Options = ["--cpus", "2"] }));
    }

    [Fact]
    public void The_guest_inherits_environment_cwd_and_standard_streams()
    {
        var spec = new RunSpec(_dir.Path, "sh", ["-c", "echo \"$GREETING\"; pwd; cat; echo to-stderr >&2; exit 3"])
        {
            Environment = new() { ["GREETING"] = "hello from the host" },
            Stdin = "from stdin\n",
        };
        var r = GuestRunner.Run(spec);
        Expect.ExitCode(3, r);
        Expect.Stdout($"hello from the host\n{_dir.Path}\nfrom stdin\n", r);
        Assert.Equal("to-stderr\n", r.Stderr);
    }

    [Fact]
    public void Program_is_looked_up_in_PATH_like_a_shell_does()
    {
        var bin = _dir.MakeDir("bin");
        File.WriteAllText(Path.Combine(bin, "my-tool"), "#!/bin/sh\necho my-tool ran with \"$@\"\n");
        File.SetUnixFileMode(Path.Combine(bin, "my-tool"), UnixFileMode.UserRead | UnixFileMode.UserExecute | UnixFileMode.UserWrite);
        var env = new Dictionary<string, string> { ["PATH"] = bin + ":" + GuestRunner.BaseEnvironment()["PATH"] };
        Expect.Success("my-tool ran with a b\n", GuestRunner.Run(new RunSpec(_dir.Path, "my-tool", ["a", "b"]) { Environment = env }));
    }

    [Fact]
    public void Options_after_the_program_belong_to_the_program()
    {
        Expect.Success("--cpus 1 --stats\n", GuestRunner.Run(_dir.Path, "echo", "--cpus", "1", "--stats"));
        var r = GuestRunner.Supervise(_dir.Path, "run", "echo", "--stats");
        Expect.Success("--stats\n", r);
    }
}
