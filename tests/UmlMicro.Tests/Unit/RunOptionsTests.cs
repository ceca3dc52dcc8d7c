using UmlMicro.Supervisor.Cli;

namespace UmlMicro.Tests.Unit;

/// <summary>`umlmicro run`'s arguments as System.CommandLine parses them into <see cref="RunOptions"/>, its help and its completions.</summary>
public class RunOptionsTests
{
    /// <summary>What `umlmicro run ARGS` would run.</summary>
    private static RunOptions Parse(params string[] args)
    {
        RunOptions? parsed = null;
        Assert.Equal(0, new CommandLine(o =>
        {
            parsed = o;
            return 0;
        }).Invoke(["run", .. args]));
        return parsed!;
    }

    /// <summary>What `umlmicro ARGS` prints on stdout, and its exit status.</summary>
    private static (string Output, int Status) Invoke(params string[] args)
    {
        var output = new StringWriter();
        int status = new CommandLine(_ => throw new InvalidOperationException("no guest in these tests")).Invoke(args, output);
        return (output.ToString(), status);
    }

    private static string RunHelp => Invoke("run", "--help").Output;

    [Fact]
    public void Options_come_before_the_program_and_everything_after_it_is_the_guests()
    {
        var o = Parse(["--cpus", "2", "--stats", "ls", "--cpus", "-l"]);
        Assert.Equal("ls", o.Program);
        Assert.Equal(["--cpus", "-l"], o.Argv);
        Assert.Contains("--Kernel:Cpus=2", o.Settings);
        Assert.Contains("--Kernel:Stats=true", o.Settings);
    }

    [Fact]
    public void Double_dash_ends_the_options()
    {
        var o = Parse(["--trace=t.json", "--", "--weird-program", "x"]);
        Assert.Equal("--weird-program", o.Program);
        Assert.Contains("--Kernel:Trace=t.json", o.Settings);
    }

    [Theory]
    [InlineData("--bogus")]
    [InlineData("--cpus", "zero")]
    [InlineData("--cpus", "0")]
    [InlineData("--mode")]
    [InlineData("--mem", "lots")]
    [InlineData("--mem", "-5M")]
    [InlineData("--mem")]
    [InlineData("--max-procs", "-1")]
    [InlineData("--max-procs", "3.5")]
    [InlineData("--max-procs", "99999999")]
    [InlineData("--max-procs")]
    [InlineData("--max-files", "lots")]
    [InlineData("--max-files", "2147483647")]
    [InlineData("--net", "bridge")]
    [InlineData("--net")]
    [InlineData("--timeout", "soon")]
    [InlineData("--timeout", "-1s")]
    [InlineData("--timeout", "5 s")]
    [InlineData("--timeout", "30d")]
    [InlineData("--timeout")]
    public void Bad_usage_is_a_usage_error(params string[] args) =>
        Assert.Throws<UsageError>(() => Parse([.. args, "true"]));

    [Fact]
    public void Mem_and_deterministic_layout_set_the_mm_section()
    {
        var o = Parse(["--mem", "256M", "--deterministic-layout", "python3"]);
        Assert.Contains("--Mm:MemoryLimit=256M", o.Settings);
        Assert.Contains("--Mm:DeterministicLayout=true", o.Settings);
        Assert.Contains("--mem <SIZE>", RunHelp);
        Assert.Contains("--deterministic-layout", RunHelp);
    }

    [Fact]
    public void The_limits_set_the_kernel_section_and_the_help_says_what_each_does()
    {
        var o = Parse(["--max-procs", "3", "--max-files=20", "--timeout", "500ms", "sh"]);
        Assert.Contains("--Kernel:MaxProcs=3", o.Settings);
        Assert.Contains("--Kernel:MaxFiles=20", o.Settings);
        Assert.Contains("--Kernel:Timeout=500ms", o.Settings);
        Assert.Contains("--max-procs <N>", RunHelp);
        Assert.Contains("Threads do not count", RunHelp);
        Assert.Contains("--max-files <N>", RunHelp);
        Assert.Contains("--timeout <DURATION>", RunHelp);
        Assert.Contains("124", RunHelp);
    }

    [Theory]
    [InlineData("--max-procs")]
    [InlineData("--timeout")]
    [InlineData("--max-files")]
    public void A_limit_of_zero_means_none_and_is_accepted(string option) =>
        Assert.Contains(Parse([option, "0", "true"]).Settings, s => s.EndsWith("=0", StringComparison.Ordinal));

    [Theory]
    [InlineData("--timeout", "soon", "--timeout: 'soon' is not a duration")]
    [InlineData("--max-procs", "many", "--max-procs wants a number")]
    public void A_bad_limit_names_the_option_and_the_value(string option, string value, string message)
    {
        var e = Assert.Throws<UsageError>(() => Parse([option, value, "true"]));
        Assert.StartsWith(message, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void A_missing_program_is_a_usage_error()
    {
        Assert.StartsWith("no PROGRAM to run", Assert.Throws<UsageError>(() => Parse(["--stats"])).Message);
        Assert.StartsWith("no PROGRAM to run", Assert.Throws<UsageError>(() => Parse(["--"])).Message);
    }

    [Theory]
    [InlineData("--mode", "tt", "--Kernel:Mode=tt")]
    [InlineData("--cpus", "3", "--Kernel:Cpus=3")]
    [InlineData("--mem", "1G", "--Mm:MemoryLimit=1G")]
    [InlineData("--max-procs", "5", "--Kernel:MaxProcs=5")]
    [InlineData("--max-files", "64", "--Kernel:MaxFiles=64")]
    [InlineData("--timeout", "2m", "--Kernel:Timeout=2m")]
    [InlineData("--net", "none", "--Kernel:Net=none")]
    [InlineData("--root", "/srv/root", "--Vfs:Root=/srv/root")]
    [InlineData("--keep-changes", "/tmp/layer", "--Vfs:KeepChanges=/tmp/layer")]
    [InlineData("--bind", "/a:/b:ro", "--Vfs:Binds:0=/a:/b:ro")]
    [InlineData("--tmpfs", "/scratch", "--Vfs:Tmpfs:0=/scratch")]
    [InlineData("--trace", "t.json", "--Kernel:Trace=t.json")]
    public void Every_option_sets_its_key_written_apart_or_with_an_equals_sign(string option, string value, string setting)
    {
        Assert.Equal([setting], Parse(option, value, "true").Settings);
        Assert.Equal([setting], Parse($"{option}={value}", "true").Settings);
    }

    [Theory]
    [InlineData("--deterministic-layout", "--Mm:DeterministicLayout=true")]
    [InlineData("--isolate", "--Vfs:Isolate=true")]
    [InlineData("--stats", "--Kernel:Stats=true")]
    public void A_flag_sets_its_key_to_true_and_takes_no_value(string flag, string setting)
    {
        var o = Parse(flag, "true", "x");
        Assert.Equal([setting], o.Settings);
        Assert.Equal("true", o.Program); // the flag did not take it as a value
        Assert.Throws<UsageError>(() => Parse($"{flag}=yes", "true"));
    }

    [Fact]
    public void Config_names_the_file_and_sets_no_key()
    {
        var o = Parse("--config", "my.json", "true");
        Assert.Equal("my.json", o.ConfigFile);
        Assert.Empty(o.Settings);
        Assert.Null(Parse("true").ConfigFile);
    }

    [Fact]
    public void A_repeatable_option_adds_one_element_per_use_and_another_given_twice_counts_its_last_value()
    {
        var o = Parse("--bind", "/a", "--cpus", "1", "--bind=/b:/c", "--tmpfs", "/t", "--cpus=2", "--config", "x.json", "--config", "y.json", "sh");
        Assert.Equal(["--Kernel:Cpus=2", "--Vfs:Binds:0=/a", "--Vfs:Binds:1=/b:/c", "--Vfs:Tmpfs:0=/t"], o.Settings.Order());
        Assert.Equal("y.json", o.ConfigFile);
    }

    [Fact]
    public void The_guests_arguments_are_untouched_whatever_they_look_like()
    {
        var o = Parse("--stats", "sh", "--help", "--", "@file", "-h", "--mode=tt");
        Assert.Equal("sh", o.Program);
        Assert.Equal(["--help", "--", "@file", "-h", "--mode=tt"], o.Argv);
        Assert.Equal("-", Parse("-", "x").Program); // a lone dash is not an option
        Assert.Equal("@file", Parse("@file").Program); // no response files
    }

    [Theory]
    [InlineData("--bogus")]
    [InlineData("-x")]
    [InlineData("--cpus=many")]
    [InlineData("--stats=1")]
    public void An_unknown_option_or_a_bad_value_is_one_line_naming_it(string arg)
    {
        var e = Assert.Throws<UsageError>(() => Parse(arg, "true"));
        Assert.Contains(arg.Split('=')[0], e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void An_unknown_command_is_a_usage_error() =>
        Assert.Contains("walk", Assert.Throws<UsageError>(() => Invoke("walk", "true")).Message);

    [Fact]
    public void Completion_suggests_the_options_and_their_values()
    {
        var (options, status) = Invoke("[suggest:7]", "run --c");
        Assert.Equal(0, status);
        Assert.Equal(["--config", "--cpus"], options.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal(["seccomp", "sysemu", "tt"], Invoke("[suggest:21]", "umlmicro run --mode ").Output.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("run", Invoke("[suggest:1]", "r").Output.Split('\n'));
    }

    [Fact]
    public void Help_exits_0_and_without_a_command_exits_2_and_the_main_help_shows_runs_options()
    {
        var (main, status) = Invoke("--help");
        Assert.Equal(0, status);
        Assert.Equal(0, Invoke("-h").Status);
        Assert.Equal(0, Invoke("run", "-h").Status);
        Assert.Contains("run <PROGRAM>", main); // "umlmicro run" where the executable is umlmicro (here the test host)
        Assert.Contains("--deterministic-layout", main);
        Assert.Equal((main, 2), Invoke());
        Assert.DoesNotContain("--version", main);
    }

}
