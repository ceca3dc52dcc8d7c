using UmlMicro.Supervisor.Servers;

namespace UmlMicro.Tests.Servers;

/// <summary>
/// A server's host process as the supervisor starts it (posix_spawnp, its stdin and stdout pipes, reaped with
/// waitpid): what goes in comes out, its end is seen, a kill ends it, nothing is left, and a program that is not
/// there is an errno rather than a process.
/// </summary>
public sealed class ServerProcessTests
{
    private static readonly Dictionary<string, string> NoEnv = [];

    [Fact]
    public void Its_stdin_and_stdout_are_the_pipes_and_closing_stdin_ends_it()
    {
        using var p = ServerProcess.Start(["cat"], NoEnv, out int errno);
        Assert.True(p is not null, $"cat did not start: errno {errno}");
        var writer = new StreamWriter(p!.Input) { AutoFlush = true }; // the pipe is the process's to close
        var reader = new StreamReader(p.Output);
        writer.WriteLine("hello server");
        Assert.Equal("hello server", reader.ReadLine());
        Assert.False(p.HasExited);
        p.CloseInput();
        Assert.True(p.WaitForExit(TimeSpan.FromSeconds(10)), "cat did not end when its stdin closed");
        Assert.False(Directory.Exists($"/proc/{p.Id}"), "the process was not reaped");
    }

    [Fact]
    public void The_environment_asked_for_reaches_it()
    {
        using var p = ServerProcess.Start(["sh", "-c", "echo \"$UMLMICRO_TEST_VALUE\""], new Dictionary<string, string> { ["UMLMICRO_TEST_VALUE"] = "42" }, out _);
        using var reader = new StreamReader(p!.Output);
        Assert.Equal("42", reader.ReadLine());
    }

    [Fact]
    public void Kill_ends_it_and_dispose_leaves_nothing()
    {
        var p = ServerProcess.Start(["sleep", "300"], NoEnv, out _)!;
        int pid = p.Id;
        p.Kill();
        Assert.True(p.WaitForExit(TimeSpan.FromSeconds(10)), "sleep survived SIGKILL");
        p.Dispose();
        Assert.False(Directory.Exists($"/proc/{pid}"));
    }

    [Fact]
    public void A_missing_program_is_an_errno()
    {
        Assert.Null(ServerProcess.Start(["/nonexistent/umlmicro-server"], NoEnv, out int errno));
        Assert.Equal(2, errno); // ENOENT
    }
}
