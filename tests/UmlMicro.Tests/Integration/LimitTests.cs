using System.Diagnostics;

namespace UmlMicro.Tests.Integration;

/// <summary>
/// The limits a host sets on a guest: --max-procs (EAGAIN at fork, as RLIMIT_NPROC), --timeout (every guest process
/// killed, exit 124) and --max-files (the guest's RLIMIT_NOFILE, which it cannot raise). Serial, because the timeout
/// tests look at the host's process table for what a run left behind (found by a marker in its environment).
/// </summary>
[Collection("serial")]
public sealed class LimitTests(FixturePrograms fixtures) : IClassFixture<FixturePrograms>, IDisposable
{
    private readonly TempDir _dir = new();
    private readonly RunMarker _marker = new();

    public void Dispose()
    {
        _marker.Dispose();
        _dir.Dispose();
    }

    private RunSpec Spec(string[] options, string program, params string[] args) =>
        new(_dir.Path, program, args) { Options = options, Environment = _marker.Environment };


    // --- --max-procs

    [Theory]
    [InlineData("sh", "sh: 0: Cannot fork")] // dash, as natively under `ulimit -u 3` for an unprivileged user
    [InlineData("busybox", "sh: can't fork: Resource temporarily unavailable")]
    public void A_shell_that_starts_more_background_jobs_than_max_procs_cannot_fork(string shell, string message)
    {
        string[] argv = shell == "busybox" ? ["sh", "-c", Jobs] : ["-c", Jobs];

        var r = GuestRunner.Run(Spec(["--max-procs", "3"], shell, argv));

        Expect.ExitCode(2, r);
        Assert.True(r.StderrLines.Contains(message), $"expected '{message}' on stderr\n{r}");
        Assert.True(r.Stdout == "", $"no job got as far as the echo\n{r}");
        _marker.AssertNothingLeft("after the shell failed to fork");
    }

    /// <summary>The shell (pid 1) and two jobs fill three places; the third job cannot start.</summary>
    private const string Jobs = "for i in 1 2 3 4 5 6; do sleep 30 & done; wait; echo all started";

    [Fact]
    public void The_same_jobs_all_run_when_the_limit_leaves_room()
    {
        var r = GuestRunner.Run(Spec(["--max-procs", "7"], "sh", "-c", "for i in 1 2 3 4 5 6; do sleep 0 & done; wait; echo all started"));

        Expect.Success("all started\n", r);
    }

    [Fact]
    public void Fork_fails_with_eagain_after_n_minus_1_children_zombies_count_and_reaping_frees_a_place()
    {
        var r = GuestRunner.Run(Spec(["--max-procs", "3"], fixtures["proc_limit"]));

        // A native run as an unprivileged user under `ulimit -u 3` prints the same, but for the threads line:
        // RLIMIT_NPROC counts threads (2 of 8 there), --max-procs counts processes only.
        Expect.Success(
            "forked: 2\n" +
            "fork: EAGAIN\n" +
            "vfork: EAGAIN\n" +
            "spawn: EAGAIN\n" +
            "after a wait: fork ok\n" +
            "ignored SIGCHLD: 20 forks\n" +
            "threads: 8 of 8\n", r);
    }

    // --- --timeout

    [Fact]
    public void A_guest_that_outlives_its_timeout_is_killed_with_one_line_and_status_124()
    {
        var clock = Stopwatch.StartNew();
        var r = GuestRunner.Run(Spec(["--timeout", "1s"], "sleep", "30"));
        clock.Stop();

        Expect.ExitCode(124, r);
        Assert.True(r.Stderr == "umlmicro: guest ran out of time (--timeout 1s)\n", $"expected exactly the timeout line on stderr\n{r}");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(25), $"the run took {clock.Elapsed} of sleep 30's 30 s\n{r}");
        _marker.AssertNothingLeft("after the timeout");
    }

    [Fact]
    public void A_timeout_kills_every_guest_process_and_the_servers()
    {
        // Background jobs, one in its own session, one ignoring SIGTERM and SIGHUP: SIGKILL reaches them all.
        var r = GuestRunner.Run(Spec(["--timeout", "2"], "sh", "-c",
            "sleep 300 & setsid sleep 301 & (trap '' TERM HUP; sleep 302) & echo started; wait"));

        Expect.ExitCode(124, r);
        Expect.Stdout("started\n", r);
        Assert.Contains("umlmicro: guest ran out of time (--timeout 2)", r.StderrLines);
        _marker.AssertNothingLeft("after the timeout");
    }

    [Fact]
    public void A_guest_that_ends_within_its_timeout_keeps_its_own_status()
    {
        var r = GuestRunner.Run(Spec(["--timeout", "2m"], "sh", "-c", "echo done; exit 7"));

        Expect.ExitCode(7, r);
        Expect.Stdout("done\n", r);
        Assert.True(r.Stderr == "", $"nothing on stderr\n{r}");
    }

    [Theory]
    [InlineData("--timeout", "soon", "--timeout")]
    [InlineData("--timeout", "-5s", "--timeout")]
    [InlineData("--max-procs", "many", "--max-procs")]
    [InlineData("--max-files", "lots", "--max-files")]
    [InlineData("--max-files", "2147483647", "--max-files")] // above any host's fs.nr_open
    public void A_bad_limit_on_the_command_line_is_a_usage_error_naming_the_option(string option, string value, string named)
    {
        var line = Expect.UsageError(GuestRunner.Supervise(_dir.Path, "run", option, value, "--", "true"));
        Assert.Contains(named, line);
    }

    [Theory]
    [InlineData("UMLMICRO_Kernel__Timeout", "30 parsecs", "Kernel:Timeout")]
    [InlineData("UMLMICRO_Kernel__MaxProcs", "-1", "Kernel:MaxProcs")]
    [InlineData("UMLMICRO_Kernel__MaxFiles", "-20", "Kernel:MaxFiles")]
    public void A_bad_limit_in_the_configuration_is_a_config_error_naming_the_key(string variable, string value, string key)
    {
        var r = GuestRunner.Run(new RunSpec(_dir.Path, "true", []) { Environment = new() { [variable] = value } });
        Assert.Contains(key, Expect.UsageError(r));
    }

    // --- RLIMIT_NOFILE and --max-files

    /// <summary>Opens /dev/null until it fails; prints how, and the highest fd it got.</summary>
    private const string OpenUntilFull = """
        import errno, os
        fds = []
        try:
            while True:
                fds.append(os.open("/dev/null", os.O_RDONLY))
        except OSError as e:
            print("open:", errno.errorcode[e.errno], "after fd", max(fds))
        """;

    [Fact]
    public void A_guest_that_lowers_its_own_file_limit_gets_emfile_as_natively()
    {
        string[] args = ["-c", "ulimit -n 20 && exec python3 -c \"$0\"", OpenUntilFull];

        var native = GuestRunner.Native(_dir.Path, "/bin/sh", args);
        var guest = GuestRunner.Run(_dir.Path, "/bin/sh", args);

        Expect.SameAsNative(native, guest);
        Assert.Equal("open: EMFILE after fd 19\n", guest.Stdout);
    }

    [Fact]
    public void Max_files_is_the_guests_limit_which_it_may_lower_and_raise_back_but_not_beyond()
    {
        const string script = """
            import ctypes, errno, os, resource, subprocess
            print("limit:", resource.getrlimit(resource.RLIMIT_NOFILE))
            libc = ctypes.CDLL(None, use_errno=True)
            INF = 2**64 - 1
            def attempt(what, call, *args):
                # struct rlimit: soft, hard
                rc = call(*args[:-2], 7, (ctypes.c_ulong * 2)(*args[-2:]), *([None] if call == libc.prlimit else []))
                print(what + ":", "ok" if rc == 0 else errno.errorcode[ctypes.get_errno()])
            attempt("raise hard to 21", libc.setrlimit, 20, 21)  # glibc's setrlimit is prlimit64(0, ...)
            attempt("raise both to infinity", libc.setrlimit, INF, INF)
            attempt("soft above hard", libc.setrlimit, 30, 20)
            attempt("raw setrlimit to 40", lambda *a: libc.syscall(160, *a), 40, 40)  # setrlimit(2) itself
            child = subprocess.Popen(["sleep", "30"])
            attempt("prlimit of a child to 64", libc.prlimit, child.pid, 64, 64)
            attempt("prlimit of a child down to 10", libc.prlimit, child.pid, 10, 10)
            child.kill()
            attempt("lower to 10", libc.setrlimit, 10, 10)
            attempt("raise back to 20", libc.setrlimit, 20, 20)
            """ + "\n" + OpenUntilFull;

        var r = GuestRunner.Run(Spec(["--max-files", "20"], "python3", "-c", script));
        var native = GuestRunner.Native(_dir.Path, "/bin/sh", "-c", "ulimit -n 20 && exec python3 -c \"$0\"", script);

        // Above 20 is EPERM whatever the guest's credentials. Within it, the host decides as natively: raising the hard
        // limit back is allowed only with CAP_SYS_RESOURCE (which even root may lack, in a container).
        Expect.ExitCode(0, r);
        Assert.True(r.StdoutLines.Take(8).SequenceEqual([
            "limit: (20, 20)",
            "raise hard to 21: EPERM",
            "raise both to infinity: EPERM",
            "soft above hard: EINVAL",
            "raw setrlimit to 40: EPERM",
            "prlimit of a child to 64: EPERM",
            "prlimit of a child down to 10: ok",
            "lower to 10: ok",
        ]), $"unexpected answers\n{r}");
        Assert.True(r.StdoutLines.Skip(8).SequenceEqual(native.StdoutLines.Skip(8)) && r.StdoutLines.Length == 10,
            $"raising back within the limit and opening files differ from a native run under ulimit -n 20\n{native}\n{r}");
    }

    [Fact]
    public void Max_files_reaches_every_guest_process()
    {
        var r = GuestRunner.Run(Spec(["--max-files", "50"], "sh", "-c", "ulimit -Sn; ulimit -Hn; sh -c 'ulimit -Hn'"));

        Expect.Success("50\n50\n50\n", r);
    }
}
