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
    public void A_missing_program_is_a_usage_error() =>
        Assert.Throws<UsageError>(() => RunOptions.Parse(["--stats"]));

    [Fact]
    public void Programs_are_looked_up_in_path_like_a_shell_does()
    {
        Assert.Equal("/bin/sh", RunOptions.LookupProgram("sh", "/nonexistent:/bin"));
        Assert.Null(RunOptions.LookupProgram("no-such-program-xyz", "/bin:/usr/bin"));
        Assert.Null(RunOptions.LookupProgram("/etc/passwd", "/bin")); // exists, not executable
    }
}
