using System.Text.Json.Nodes;

namespace UmlMicro.Tests.Integration;

/// <summary>
/// A broken --config file, through the real command line: exit 2 with one line that names the file, the key and
/// what is wrong, no stack trace, no guest run and no server left behind.
/// </summary>
[Collection("serial")]
public sealed class ConfigFileTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly RunMarker _marker = new();

    public void Dispose()
    {
        _marker.Dispose();
        _dir.Dispose();
    }

    /// <summary>Runs <c>umlmicro run --config FILE -- echo guest ran</c> and returns its one line of complaint.</summary>
    private string Refused(string file)
    {
        var r = GuestRunner.Run(new RunSpec(_dir.Path, "echo", ["guest ran"])
        {
            Options = ["--config", file],
            Environment = _marker.Environment,
        });
        var line = Expect.UsageError(r);
        Assert.StartsWith("umlmicro: ", line);
        Assert.Contains(file, line);
        _marker.AssertNothingLeft("after the refused run");
        return line;
    }

    /// <summary>The default configuration with <paramref name="key"/> (colon-separated) set to <paramref name="json"/>.</summary>
    private string DefaultWith(string key, string json)
    {
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(RepoRoot.BinDir(), "configs", "default.json")))!;
        var parts = key.Split(':');
        var parent = config;
        foreach (var part in parts[..^1])
            parent = parent[part] ??= new JsonObject();
        parent[parts[^1]] = JsonNode.Parse(json);
        return _dir.Write($"config-{Guid.NewGuid():N}.json", config.ToJsonString());
    }

    [Fact]
    public void A_missing_file_is_named()
    {
        var file = Path.Combine(_dir.Path, "no-such.json");
        Assert.Contains("no such file", Refused(file));
    }

    [Theory]
    [InlineData("")]
    [InlineData("{ \"Kernel\": ")]
    [InlineData("not json")]
    [InlineData("{ \"Kernel\": { \"Mode\": \"tt\", } ")]
    [InlineData("[1, 2]")]
    [InlineData("42")]
    [InlineData("{ \"Kernel\": { \"Mode\": \"tt\", \"Mode\": \"sysemu\" } }")]
    public void A_file_that_is_not_a_json_object_is_named(string text)
    {
        var file = _dir.Write($"broken-{Guid.NewGuid():N}.json", text);
        Assert.Contains("not valid JSON", Refused(file));
    }

    [Theory]
    [InlineData("Bogus", "1")]
    [InlineData("Kernel:Cpuz", "2")]
    [InlineData("Servers:Vfs:Bogus", "1")]
    [InlineData("Vfs:Extra", "{ \"a\": 1 }")]
    [InlineData("Sched:Policy2", "\"fifo\"")]
    public void An_unknown_key_is_named_even_nested(string key, string json)
    {
        var line = Refused(DefaultWith(key, json));
        Assert.Contains($"unknown key '{key}'", line);
    }

    [Theory]
    [InlineData("Kernel:Mode", "\"fast\"", "unknown mode 'fast'")]
    [InlineData("Kernel:Mode", "3", "unknown mode '3'")]
    [InlineData("Kernel:Cpus", "\"many\"", "'many' is not a whole number")]
    [InlineData("Kernel:Cpus", "-1", "-1 is not from 0")]
    [InlineData("Kernel:Cpus", "2000", "2000 is not from 0")]
    [InlineData("Kernel:Cpus", "1.5", "'1.5' is not a whole number")]
    [InlineData("Kernel:Cpus", "99999999999", "'99999999999' is not a whole number")]
    [InlineData("Kernel:Cpus", "[1]", "a single value")]
    [InlineData("Kernel:Stats", "\"maybe\"", "'maybe' is not true or false")]
    [InlineData("Kernel:Hostname", "\"hhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh\"", "more than uname's 64")]
    [InlineData("Kernel:Release", "{ \"a\": 1 }", "a single value")]
    [InlineData("Kernel", "\"x\"", "'x' is not a section")]
    [InlineData("Servers:HandshakeTimeoutMs", "0", "0 is not from 1")]
    [InlineData("Servers:RestartLimit", "-1", "-1 is not from 0")]
    [InlineData("Servers:RestartWindowSeconds", "\"a minute\"", "'a minute' is not a whole number")]
    [InlineData("Servers:HandshakeTimeoutMs", "\"soon\"", "'soon' is not a whole number")]
    [InlineData("Servers:Vfs", "\"Servers.Vfs\"", "is not a section")]
    [InlineData("Servers:Mm:Command", "\"\"", "missing")]
    [InlineData("Servers:Sched:Command", "{ \"Deep\": \"x\" }", "a single value")]
    [InlineData("Mm:MemoryLimit", "\"lots\"", "'lots' is not a size")]
    [InlineData("Mm:MemoryLimit", "\"-1\"", "is not a size")]
    [InlineData("Mm:MemoryLimit", "\"99999999999T\"", "too large")]
    [InlineData("Mm:DeterministicLayout", "3", "'3' is not true or false")]
    [InlineData("Sched:Policy", "\"lottery\"", "unknown policy 'lottery'")]
    [InlineData("Sched:QuantumMs", "1", "1 is not from 2")]
    [InlineData("Sched:QuantumMs", "\"x\"", "'x' is not a whole number")]
    [InlineData("Vfs:Root", "\"relative\"", "not an absolute path")]
    [InlineData("Vfs:Root", "\"/no/such/dir\"", "not an absolute path of a host directory")]
    [InlineData("Vfs:Isolate", "\"yes\"", "'yes' is not true or false")]
    [InlineData("Vfs:KeepChanges", "\"/etc/passwd\"", "is a file, not a directory")]
    [InlineData("Vfs:Binds", "\"/tmp\"", "is not a list")]
    [InlineData("Vfs:Binds", "[{ \"Host\": \"/tmp\" }]", "not a string")]
    [InlineData("Vfs:Binds", "[\"/no/such/dir\"]", "'/no/such/dir' is not a host directory")]
    [InlineData("Vfs:Binds", "[\"/tmp:relative\"]", "'relative' is not an absolute guest path")]
    [InlineData("Vfs:Binds", "[\"/tmp:/a:/b:ro\"]", "is not HOST[:GUEST][:ro]")]
    [InlineData("Vfs:Tmpfs", "[\"relative\"]", "'relative' is not an absolute guest path")]
    public void A_bad_value_names_the_key_and_the_problem(string key, string json, string problem)
    {
        // UMLMICRO_Kernel__Mode (the suite's other trap modes) overrides the file's mode, as documented.
        if (key == "Kernel:Mode" && Environment.GetEnvironmentVariable("UMLMICRO_Kernel__Mode") is { Length: > 0 }) return;
        var line = Refused(DefaultWith(key, json));
        Assert.Contains(key, line);
        Assert.Contains(problem, line);
    }

    [Fact]
    public void The_same_file_with_good_values_runs_the_guest()
    {
        // The refusals above come from the values, not from the way the tests write the file.
        var file = DefaultWith("Kernel:Cpus", "1");
        var r = GuestRunner.Run(new RunSpec(_dir.Path, "echo", ["guest ran"]) { Options = ["--config", file] });
        Expect.Success("guest ran\n", r);
    }
}
