namespace UmlMicro.Tests.Integration;

/// <summary>
/// Hostile guest arguments (tests/fixtures/hostile_args.c) and random syscalls (tests/fixtures/syscall_fuzz.c):
/// the guest gets exactly the errno Linux gives it natively, and the supervisor and its servers go on serving.
/// </summary>
public sealed class HostileInputTests(FixturePrograms fixtures) : IClassFixture<FixturePrograms>, IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Openat2_keeps_every_resolve_flag_as_Linux_does()
    {
        using var nativeDir = new TempDir();
        var native = GuestRunner.Native(nativeDir.Path, fixtures["openat2_resolve"]);
        Expect.ExitCode(0, native);
        // The truth compared with: each flag refuses what it is for, natively.
        foreach (var line in new[]
                 {
                     "NO_SYMLINKS relative link: ELOOP", "NO_MAGICLINKS magic fd link: ELOOP", "NO_MAGICLINKS exe link: ELOOP",
                     "BENEATH dot dot out: EXDEV", "BENEATH absolute link: EXDEV", "BENEATH root link through: EXDEV",
                     "IN_ROOT absolute slash: ok dir ", "IN_ROOT dot dot out and back: ENOENT", "NO_XDEV into proc: EXDEV",
                     "CACHED exe link: EAGAIN",
                 })
            Assert.Contains(line, native.StdoutLines);
        var guest = GuestRunner.Run(_dir.Path, fixtures["openat2_resolve"]);
        Expect.SameAsNative(native, guest);
    }

    [Fact]
    public void Hostile_arguments_fail_with_the_native_errno_and_the_kernel_goes_on()
    {
        var native = GuestRunner.Native(_dir.Path, fixtures["hostile_args"]);
        Expect.ExitCode(0, native);
        // The truth this test compares with: the fixture really provokes each kind of failure natively.
        foreach (var line in new[]
                 {
                     "connect(-1, AF_UNIX): -1 EBADF",
                     "openat(-5, \"x\"): -1 EBADF",
                     "getdents64(dir, buf, 1<<62): -1 EINVAL",
                     "readlinkat(AT_FDCWD, \"hl\", buf, 0): -1 EINVAL",
                     "execve(unterminated): -1 EFAULT",
                     "symlink(5000-byte target, \"hl\"): -1 ENAMETOOLONG",
                     "rename(\"hf\", 5000): -1 ENAMETOOLONG",
                     "bind(AF_UNIX, addrlen 300): -1 EINVAL",
                     "openat(all flag bits): -1 ENOTDIR",
                     "unlinkat(bogus flags): -1 EINVAL",
                     "renameat2(bogus flags): -1 EINVAL",
                     "clone(CLONE_NEWNS|CLONE_FS): -1 EINVAL",
                     "clone(CLONE_SIGHAND without CLONE_VM): -1 EINVAL",
                     "mmap(flags 0): -1 EINVAL",
                     "kill(INT_MIN, 0): -1 ESRCH",
                     "waitid(P_PID, nopid, buf, 0): -1 EINVAL",
                     "tkill(-7, SIGTERM): -1 EINVAL",
                     "capset({v3, nopid}): -1 EPERM",
                     "sched_setaffinity(nopid, 8, kernel address): -1 EFAULT",
                     "setpgid(-1, 0): -1 EINVAL",
                     "openat(kernel address): -1 EFAULT",
                     "uname(kernel address): -1 EFAULT",
                     "exit_group beside routed calls (5 rounds): exited 7",
                     "size of hf: = 5",
                 })
            Assert.Contains(line, native.StdoutLines);
        Assert.Equal("alive", native.StdoutLines[^1]);

        var guest = GuestRunner.Run(_dir.Path, fixtures["hostile_args"]);
        Expect.SameAsNative(native, guest);
        Assert.True(guest.Stderr.Length == 0, $"the kernel complained\n{guest}");
    }

    [Fact]
    public void After_hostile_arguments_the_same_supervisor_still_runs_programs()
    {
        var script = $"{fixtures["hostile_args"]} > /dev/null; echo $?; ls -d /; echo $$";
        Expect.Success("0\n/\n1\n", GuestRunner.Run(_dir.Path, "sh", "-c", script));
    }

    /// <summary>Fixed seeds, so that a failure replays (tests/fuzz.sh SEED COUNT runs the same fuzzer for longer).</summary>
    [Theory]
    [InlineData(1)]
    [InlineData(20261127)]
    public void Random_syscalls_leave_the_kernel_serving(int seed)
    {
        var r = GuestRunner.Run(new RunSpec(_dir.Path, fixtures["syscall_fuzz"], [seed.ToString(), "1500"])
        {
            Options = ["--stats"], // its restarts line says whether a server crashed and was brought back meanwhile
            Timeout = TimeSpan.FromSeconds(60),
        });
        Assert.True(r.ExitCode != 125 && !r.Stderr.Contains("kernel failure", StringComparison.Ordinal),
            $"the kernel failed (replay: tests/fuzz.sh {seed} 1500)\n{r}");
        Expect.ExitCode(0, r);
        Assert.True(r.Stderr.Contains("server restarts: 0,", StringComparison.Ordinal), $"a server crashed or hung (replay: tests/fuzz.sh {seed} 1500)\n{r}");
        // The fuzzer's own last calls, after every batch: stat of a file it made, getpid as guest pid 1.
        Assert.Equal("fuzz done: stat ok, getpid 1", r.StdoutLines[^1]);
        Assert.Matches(@"^batches 30, ", r.StdoutLines[^2]);
    }

    [Fact]
    public void The_fuzzer_refuses_to_run_on_the_host()
    {
        // Its denylist keeps it from signalling other processes, but only as a guest's pid 1 is every pid it can
        // name one of the guest's.
        var r = GuestRunner.Native(_dir.Path, fixtures["syscall_fuzz"], "1", "10");
        Expect.ExitCode(2, r);
        Assert.Contains("not on the host", r.Stderr);
    }
}
