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

    [Theory]
    [InlineData("0", 0L)]
    [InlineData("65536", 65536L)]
    [InlineData("512M", 512L << 20)]
    [InlineData("1g", 1L << 30)]
    [InlineData("2T", 2L << 40)]
    public void A_memory_limit_is_bytes_or_a_size_with_a_binary_unit(string value, long bytes)
    {
        var c = KernelConfigLoader.Load(Path.Combine(RepoRoot.Find(), "configs", "default.json"), [$"--Mm:MemoryLimit={value}"]);
        c.Validate("c.json");
        Assert.Equal(bytes, c.Mm.MemoryLimitBytes);
    }

    [Theory]
    [InlineData("-1")]
    [InlineData("1.5G")]
    [InlineData("12X")]
    [InlineData("")]
    [InlineData("99999999999T")]
    public void A_bad_memory_limit_is_a_one_line_config_error_naming_the_key(string value)
    {
        var c = KernelConfigLoader.Load(Path.Combine(RepoRoot.Find(), "configs", "default.json"), [$"--Mm:MemoryLimit={value}"]);
        var e = Assert.Throws<ConfigError>(() => c.Validate("c.json"));
        Assert.Contains("Mm:MemoryLimit", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Theory]
    [InlineData("", 0)]
    [InlineData("0", 0)]
    [InlineData("30", 30_000)]
    [InlineData("1.5", 1_500)]
    [InlineData("500ms", 500)]
    [InlineData("30s", 30_000)]
    [InlineData("2m", 120_000)]
    [InlineData("1h", 3_600_000)]
    [InlineData(" 2s ", 2_000)]
    public void A_timeout_is_a_duration_with_a_unit_or_plain_seconds(string value, long ms)
    {
        var c = KernelConfigLoader.Load(Path.Combine(RepoRoot.Find(), "configs", "default.json"), [$"--Kernel:Timeout={value}"]);
        c.Validate("c.json");
        Assert.Equal(TimeSpan.FromMilliseconds(ms), c.Kernel.TimeoutSpan);
    }

    [Theory]
    [InlineData("Kernel:Timeout", "soon")]
    [InlineData("Kernel:Timeout", "-3s")]
    [InlineData("Kernel:Timeout", "100d")]
    [InlineData("Kernel:MaxProcs", "-1")]
    [InlineData("Kernel:MaxProcs", "5000000")]
    [InlineData("Kernel:MaxFiles", "-1")]
    [InlineData("Kernel:MaxFiles", "2147483647")]
    public void A_bad_limit_is_a_one_line_config_error_naming_the_key(string key, string value)
    {
        var c = KernelConfigLoader.Load(Path.Combine(RepoRoot.Find(), "configs", "default.json"), [$"--{key}={value}"]);
        var e = Assert.Throws<ConfigError>(() => c.Validate("c.json"));
        Assert.Contains(key, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void The_default_config_sets_no_limit()
    {
        var c = KernelConfigLoader.Load(Path.Combine(RepoRoot.Find(), "configs", "default.json"), []);
        c.Validate("c.json");
        Assert.Equal(0, c.Kernel.MaxProcs);
        Assert.Equal(0, c.Kernel.MaxFiles);
        Assert.Equal(TimeSpan.Zero, c.Kernel.TimeoutSpan);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}

public sealed class KernelConfigSectionTests
{
    /// <summary>CheckKeys finds a key's property through a list of section types (reflection over types not listed
    /// would be trimmed away in the NativeAOT supervisor): every class a key may lead to must be on it.</summary>
    [Fact]
    public void Every_section_type_a_key_can_lead_to_is_listed_for_the_key_check()
    {
        var reached = new HashSet<Type>();
        void Walk(Type t)
        {
            if (!reached.Add(t)) return;
            foreach (var p in t.GetProperties(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Instance))
            {
                var pt = Nullable.GetUnderlyingType(p.PropertyType) ?? p.PropertyType;
                if (pt.IsClass && pt != typeof(string) && !(pt.IsGenericType && pt.GetGenericTypeDefinition() == typeof(List<>))) Walk(pt);
            }
        }
        Walk(typeof(KernelConfig));
        Assert.Equal(reached.OrderBy(t => t.FullName), KernelConfigLoader.Sections.Keys.OrderBy(t => t.FullName));
        foreach (var t in reached)
            foreach (var p in t.GetProperties(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Instance))
                Assert.Equal(p, KernelConfigLoader.Sections[t](p.Name.ToLowerInvariant()));
    }
}
