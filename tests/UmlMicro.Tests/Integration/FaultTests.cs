namespace UmlMicro.Tests.Integration;

/// <summary>Hostile or broken guest input: the guest gets the errno Linux gives it, and the kernel goes on.</summary>
public sealed class FaultTests(FixturePrograms fixtures) : IClassFixture<FixturePrograms>, IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Bad_pointers_and_overlong_paths_fail_exactly_as_natively_and_the_kernel_survives()
    {
        var native = GuestRunner.Native(_dir.Path, fixtures["bad_pointers"]);
        Expect.ExitCode(0, native);
        // The truth this test compares with: the fixture really provokes EFAULT and ENAMETOOLONG.
        Assert.Contains("openat(AT_FDCWD, 1, O_RDONLY): -1 EFAULT", native.StdoutLines);
        Assert.Contains("execve(1, argv, envp): -1 EFAULT", native.StdoutLines);
        Assert.Contains("clone3(1, 64): -1 EFAULT", native.StdoutLines);
        Assert.Contains("openat(5000-byte path): -1 ENAMETOOLONG", native.StdoutLines);
        Assert.Equal("alive", native.StdoutLines[^1]);

        var guest = GuestRunner.Run(_dir.Path, fixtures["bad_pointers"]);
        Expect.SameAsNative(native, guest);
        Assert.True(guest.Stderr.Length == 0, $"the kernel complained\n{guest}");
    }

    [Fact]
    public void After_bad_pointers_the_same_supervisor_still_runs_children()
    {
        var script = $"{fixtures["bad_pointers"]} > /dev/null; echo $?; {fixtures["bad_pointers"]} | tail -1; uname -r | grep -c umlmicro";
        Expect.Success("0\nalive\n1\n", GuestRunner.Run(_dir.Path, "sh", "-c", script));
    }

    [Fact]
    public void A_5000_byte_path_is_ENAMETOOLONG_for_real_programs_as_natively()
    {
        var longPath = new string('a', 5000);
        var native = GuestRunner.Native(_dir.Path, "sh", "-c", $"cat {longPath}; echo $?; ls -d {longPath} 2>/dev/null; echo $?");
        Assert.Contains("File name too long", native.Stderr);
        var guest = GuestRunner.Run(_dir.Path, "sh", "-c", $"cat {longPath}; echo $?; ls -d {longPath} 2>/dev/null; echo $?");
        Expect.SameAsNative(native, guest);
        Assert.Equal(native.Stderr, guest.Stderr);
    }

    [Fact]
    public void Children_killed_at_any_moment_of_their_path_calls_leave_the_kernel_running()
    {
        // A child may die inside anything the kernel does for it, a call it injects included (the scratch area a
        // rewritten path goes to, made at a child's first such call: a file of the guest's own /tmp is one whose
        // path the kernel rewrites). The kernel used to fail the whole guest then.
        var guest = GuestRunner.Run(new RunSpec(_dir.Path, fixtures["kill_race"], ["300", "/tmp/kill_race.file"]) { Options = ["--isolate"] });

        Expect.Success("done\n", guest);
        Assert.True(guest.Stderr.Length == 0, $"the kernel complained\n{guest}");
    }

    [Fact]
    public void Exec_of_a_missing_or_non_executable_file_fails_as_natively()
    {
        _dir.Write("notexec.sh", "echo hi\n");
        const string script = "./missing; echo $?; ./notexec.sh; echo $?; /etc; echo $?";
        var native = GuestRunner.Native(_dir.Path, "sh", "-c", script);
        Expect.Stdout("127\n126\n126\n", native);
        Expect.SameAsNative(native, GuestRunner.Run(_dir.Path, "sh", "-c", script));
    }
}
