using UmlMicro.Supervisor.Cli;

namespace UmlMicro.Tests.Unit;

public class RunOptionsTests
{
    [Fact]
    public void Options_come_before_the_program_and_everything_after_it_is_the_guests()
    {
        var o = RunOptions.Parse(["--cpus", "2", "--stats", "ls", "--cpus", "-l"]);
        Assert.Equal("ls", o.Program);
        Assert.Equal(["--cpus", "-l"], o.Argv);
        Assert.Contains("--Kernel:Cpus=2", o.Settings);
        Assert.Contains("--Kernel:Stats=true", o.Settings);
    }

    [Fact]
    public void Double_dash_ends_the_options()
    {
        var o = RunOptions.Parse(["--trace=t.json", "--", "--weird-program", "x"]);
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
        Assert.Throws<UsageError>(() => RunOptions.Parse([.. args, "true"]));

    [Fact]
    public void Mem_and_deterministic_layout_set_the_mm_section()
    {
        var o = RunOptions.Parse(["--mem", "256M", "--deterministic-layout", "python3"]);
        Assert.Contains("--Mm:MemoryLimit=256M", o.Settings);
        Assert.Contains("--Mm:DeterministicLayout=true", o.Settings);
        Assert.Contains("--mem SIZE", RunOptions.RunHelp);
        Assert.Contains("--deterministic-layout", RunOptions.RunHelp);
    }

    [Fact]
    public void The_limits_set_the_kernel_section_and_the_help_says_what_each_does()
    {
        var o = RunOptions.Parse(["--max-procs", "3", "--max-files=20", "--timeout", "500ms", "sh"]);
        Assert.Contains("--Kernel:MaxProcs=3", o.Settings);
        Assert.Contains("--Kernel:MaxFiles=20", o.Settings);
        Assert.Contains("--Kernel:Timeout=500ms", o.Settings);
        Assert.Contains("--max-procs N", RunOptions.RunHelp);
        Assert.Contains("Threads do not count", RunOptions.RunHelp);
        Assert.Contains("--max-files N", RunOptions.RunHelp);
        Assert.Contains("--timeout DURATION", RunOptions.RunHelp);
        Assert.Contains("124", RunOptions.RunHelp);
    }

    [Theory]
    [InlineData("--max-procs")]
    [InlineData("--timeout")]
    [InlineData("--max-files")]
    public void A_limit_of_zero_means_none_and_is_accepted(string option) =>
        Assert.Contains(RunOptions.Parse([option, "0", "true"]).Settings, s => s.EndsWith("=0", StringComparison.Ordinal));

    [Theory]
    [InlineData("--timeout", "soon", "--timeout: 'soon' is not a duration")]
    [InlineData("--max-procs", "many", "--max-procs wants a number")]
    public void A_bad_limit_names_the_option_and_the_value(string option, string value, string message)
    {
        var e = Assert.Throws<UsageError>(() => RunOptions.Parse([option, value, "true"]));
        Assert.StartsWith(message, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void A_missing_program_is_a_usage_error() =>
        Assert.Throws<UsageError>(() => RunOptions.Parse(["--stats"]));

}
