using UmlMicro.Supervisor.Cli;

namespace UmlMicro.Tests.Unit;

public sealed class KernelConfigTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("umlcfg").FullName;

    private string Write(string json)
    {
        var f = Path.Combine(_dir, "c.json");
        File.WriteAllText(f, json);
        return f;
    }

    [Fact]
    public void The_default_config_binds()
    {
        var root = RepoRoot.Find();
        var c = KernelConfigLoader.Load(Path.Combine(root, "configs", "default.json"), []);
        Assert.Equal(Environment.GetEnvironmentVariable("UMLMICRO_Kernel__Mode") ?? "seccomp", c.Kernel.Mode); // the environment overrides the file
        Assert.Equal("{bin}/Servers.Vfs", c.Servers.Vfs!.Command);
    }

    [Fact]
    public void The_command_line_overrides_the_file()
    {
        var c = KernelConfigLoader.Load(Write("""{ "Kernel": { "Cpus": 3 } }"""), ["--Kernel:Cpus=5"]);
        Assert.Equal(5, c.Kernel.Cpus);
    }

    [Fact]
    public void An_unknown_key_names_the_file_and_the_key()
    {
        var f = Write("""{ "Kernel": { "Cpuz": 3 } }""");
        var e = Assert.Throws<ConfigError>(() => KernelConfigLoader.Load(f, []));
        Assert.Contains(f, e.Message);
        Assert.Contains("Kernel:Cpuz", e.Message);
    }

    [Fact]
    public void A_bad_value_and_broken_json_and_a_missing_file_are_config_errors()
    {
        Assert.Throws<ConfigError>(() => KernelConfigLoader.Load(Write("""{ "Kernel": { "Cpus": "many" } }"""), []));
        Assert.Throws<ConfigError>(() => KernelConfigLoader.Load(Write("""{ "Kernel": """), []));
        Assert.Throws<ConfigError>(() => KernelConfigLoader.Load(Path.Combine(_dir, "none.json"), []));
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
