using System.Diagnostics;

namespace UmlMicro.Tests.Integration;

/// <summary>Signals: a guest can only name guest processes; signals sent to the supervisor reach guest pid 1.</summary>
public sealed class SignalTests(FixturePrograms fixtures) : IClassFixture<FixturePrograms>, IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void An_ignored_signal_interrupts_no_call_as_natively()
    {
        var native = GuestRunner.Native(_dir.Path, fixtures["ignored_signals"]);
        Expect.ExitCode(0, native);
        Assert.Contains("sigtimedwait, SIGUSR1 ignored meanwhile: -1 EAGAIN", native.StdoutLines);
        Assert.Contains("epoll_wait, a child exits meanwhile: 0 ", native.StdoutLines);
        Expect.SameAsNative(native, GuestRunner.Run(_dir.Path, fixtures["ignored_signals"]));
    }

    /// <summary>pid_probe's lines, and what each must say for a pid the guest was never granted.</summary>
    private static readonly string[] NotAGuestPid =
    [
        "kill(pid, 0): -1 ESRCH",
        "kill(-pid, 0): -1 ESRCH",
        "kill(pid, SIGKILL): -1 ESRCH",
        "kill(-pid, SIGKILL): -1 ESRCH",
        "tkill(pid, SIGKILL): -1 ESRCH",
        "tgkill(pid, pid, SIGKILL): -1 ESRCH",
        "tgkill(getpid(), pid, SIGKILL): -1 ESRCH",
        "wait4(pid, WNOHANG): -1 ECHILD",
        "waitid(P_PID, pid, WNOHANG): -1 ECHILD",
        "getpgid(pid): -1 ESRCH",
        "getsid(pid): -1 ESRCH",
        "setpgid(pid, 0): -1 ESRCH",
    ];

    private static readonly string[] NotAGuestPidMore =
    [
        "sched_getaffinity(pid): -1 ESRCH",
        "sched_getparam(pid): -1 ESRCH",
        "sched_getscheduler(pid): -1 ESRCH",
        "getpriority(PRIO_PROCESS, pid): -1 ESRCH",
        "prlimit(pid, RLIMIT_NOFILE): -1 ESRCH",
        "pidfd_open(pid): -1 ESRCH",
        "rt_sigqueueinfo(pid, SIGKILL): -1 ESRCH",
        "rt_tgsigqueueinfo(pid, pid, SIGKILL): -1 ESRCH",
    ];

    [Theory]
    [InlineData(99999)]
    [InlineData(4194000)]
    public void A_pid_the_guest_was_never_granted_is_ESRCH(int pid)
    {
        var r = GuestRunner.Run(_dir.Path, fixtures["pid_probe"], pid.ToString());
        Expect.ExitCode(0, r);
        Assert.Equal(NotAGuestPid, r.StdoutLines);
    }

    [Fact]
    public void A_host_process_cannot_be_signalled_or_waited_for_and_survives()
    {
        using var sleep = Process.Start(new ProcessStartInfo("sleep", "60") { UseShellExecute = false })!;
        try
        {
            var r = GuestRunner.Run(_dir.Path, fixtures["pid_probe"], sleep.Id.ToString());
            Expect.ExitCode(0, r);
            Assert.Equal(NotAGuestPid, r.StdoutLines);
            Assert.False(sleep.HasExited, $"the host's sleep (pid {sleep.Id}) died: a guest signal reached the host\n{r}");
            Assert.True(HostProcesses.IsAlive(sleep.Id), "the host's sleep is gone");
        }
        finally
        {
            sleep.Kill();
            sleep.WaitForExit();
        }
    }

    [Fact]
    public void Other_pid_taking_calls_do_not_reach_a_host_process_either()
    {
        using var sleep = Process.Start(new ProcessStartInfo("sleep", "60") { UseShellExecute = false })!;
        try
        {
            var r = GuestRunner.Run(_dir.Path, fixtures["pid_probe"], sleep.Id.ToString(), "all");
            Expect.ExitCode(0, r);
            Assert.Equal(NotAGuestPid.Concat(NotAGuestPidMore), r.StdoutLines);
            Assert.True(HostProcesses.IsAlive(sleep.Id), $"the host's sleep (pid {sleep.Id}) died\n{r}");
        }
        finally
        {
            sleep.Kill();
            sleep.WaitForExit();
        }
    }

    [Fact]
    public void A_guest_signals_its_own_child_by_its_virtual_pid_as_natively()
    {
        const string script = "sleep 30 & p=$!; kill -0 $p && echo alive; kill -USR1 $p; wait $p; echo status=$?; " +
                              "kill -0 $p 2>/dev/null || echo gone";
        var native = GuestRunner.Native(_dir.Path, "sh", "-c", script);
        Expect.Stdout("alive\nstatus=138\ngone\n", native);
        Expect.SameAsNative(native, GuestRunner.Run(_dir.Path, "sh", "-c", script));
    }

    [Fact]
    public void A_process_group_is_named_and_signalled_by_its_virtual_pgid_as_natively()
    {
        const string script = """
            import os, signal, subprocess
            p = subprocess.Popen(["sh", "-c", "sleep 30 & sleep 30 & wait"], process_group=0)
            print("own group:", os.getpgid(p.pid) == p.pid)
            os.killpg(p.pid, signal.SIGTERM)
            print("status:", p.wait())
            """;
        var native = GuestRunner.Native(_dir.Path, Tools.Python3, "-c", script);
        Expect.Stdout("own group: True\nstatus: -15\n", native);
        Expect.SameAsNative(native, GuestRunner.Run(_dir.Path, Tools.Python3, "-c", script));
    }

    /// <summary>
    /// kill(0, sig) means "my process group". Guest pid 1 must not share a process group with host processes
    /// (the supervisor, its servers, the user's shell), or that signal reaches them. The supervisor runs in a
    /// session of its own here (setsid), so that a leak hits only the wrapper shell, which reports it.
    /// </summary>
    [Fact]
    public void Kill_0_from_the_guest_reaches_only_guest_processes()
    {
        var setsid = Tools.Require("setsid", "util-linux");
        var wrapper = "trap 'echo HOST SHELL GOT TERM' TERM; \"$0\" run -- sh -c \"$1\"; echo status=$?";
        const string guest = "trap 'echo guest got TERM' TERM; sleep 3 & kill -TERM 0; wait; echo done";
        var r = GuestRunner.Native(new RunSpec(_dir.Path, setsid, ["-w", "sh", "-c", wrapper, GuestRunner.Supervisor, guest]));
        Assert.True(r.Stdout == "guest got TERM\ndone\nstatus=0\n",
            $"expected only the guest to get the SIGTERM of kill(0, SIGTERM)\n{r}");
    }

    [Fact]
    public void Raise_and_pthread_kill_deliver_to_the_calling_thread_as_natively()
    {
        var native = GuestRunner.Native(_dir.Path, fixtures["threads"]);
        Assert.Contains("raise in thread 3 runs the handler in that thread: ok", native.StdoutLines);
        Expect.SameAsNative(native, GuestRunner.Run(_dir.Path, fixtures["threads"]));
    }

    [Theory]
    [InlineData(HostProcesses.SIGTERM, "TERM", 3)]
    [InlineData(HostProcesses.SIGINT, "INT", 4)]
    [InlineData(HostProcesses.SIGHUP, "HUP", 5)]
    public void A_signal_sent_to_the_supervisor_is_passed_to_guest_pid_1(int sig, string name, int status)
    {
        var script = $"trap 'echo got {name}; exit {status}' {name}; echo ready; sleep 30 & wait";
        using var guest = GuestRunner.Start(new RunSpec(_dir.Path, "sh", ["-c", script]));
        guest.WaitForStdout("ready\n", TimeSpan.FromSeconds(30));
        guest.Signal(sig);
        var r = guest.WaitForExit(TimeSpan.FromSeconds(30));
        Assert.True(r.Stdout == "ready\ngot " + name + "\n" && r.ExitCode == status,
            $"expected the guest's trap to print 'got {name}' and exit {status}\n{r}");
    }

    [Fact]
    public void SIGTERM_to_the_supervisor_kills_a_guest_that_does_not_trap_it()
    {
        using var guest = GuestRunner.Start(new RunSpec(_dir.Path, "sh", ["-c", "echo ready; sleep 30"]));
        guest.WaitForStdout("ready\n", TimeSpan.FromSeconds(30));
        guest.Signal(HostProcesses.SIGTERM);
        Expect.ExitCode(143, guest.WaitForExit(TimeSpan.FromSeconds(30)));
    }

    /// <summary>An SA_SIGINFO handler sees the sender's guest pid: SIGCHLD's child, kill's, tgkill's and sigqueue's sender.</summary>
    [Fact]
    public void Siginfo_names_senders_by_their_guest_pids_as_natively()
    {
        var native = GuestRunner.Native(_dir.Path, fixtures["siginfo_probe"]);
        Assert.DoesNotContain(": no", native.Stdout);
        Expect.SameAsNative(native, GuestRunner.Run(_dir.Path, fixtures["siginfo_probe"]));
    }

    /// <summary>SIGSTOP, SIGTSTP and SIGCONT stop and continue a child; wait's WUNTRACED/WCONTINUED and waitid report it.</summary>
    [Fact]
    public void Job_control_stops_and_continues_a_child_as_natively()
    {
        var native = GuestRunner.Native(_dir.Path, fixtures["job_control"]);
        Assert.Contains("SIGCONT: waitpid continued", native.Stdout);
        Expect.SameAsNative(native, GuestRunner.Run(_dir.Path, fixtures["job_control"]));
    }

    [Fact]
    public void Job_control_works_under_one_vcpu()
    {
        var native = GuestRunner.Native(_dir.Path, fixtures["job_control"]);
        Expect.SameAsNative(native, GuestRunner.Run(_dir.Path, ["--cpus", "1"], fixtures["job_control"]));
    }
}
