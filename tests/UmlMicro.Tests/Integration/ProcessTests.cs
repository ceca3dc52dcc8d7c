using System.Text.RegularExpressions;

namespace UmlMicro.Tests.Integration;

/// <summary>Guest processes and threads: virtual pids, exit statuses, fork/wait, threads, real programs.</summary>
public sealed class ProcessTests(FixturePrograms fixtures) : IClassFixture<FixturePrograms>, IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Fork_returns_the_childs_pid_even_when_the_host_reaped_the_child_first()
    {
        // With SIGCHLD ignored the host reaps each child as it exits, often before the parent's fork returns: the
        // parent was once told 0 then, took itself for the child and exited.
        Expect.Success("ok 2000\n", GuestRunner.Run(_dir.Path, fixtures["fork_reaped"], "2000"));
    }

    [Fact]
    public void Shell_sees_itself_as_pid_1()
    {
        Expect.Success("1\n", GuestRunner.Run(_dir.Path, "sh", "-c", "echo $$"));
    }

    [Fact]
    public void Busybox_shell_sees_itself_as_pid_1()
    {
        Expect.Success("1\n", GuestRunner.Run(_dir.Path, Tools.Busybox, "sh", "-c", "echo $$"));
    }

    [Fact]
    public void Parent_of_pid_1_is_outside_the_namespace()
    {
        Expect.Success("0\n", GuestRunner.Run(_dir.Path, "sh", "-c", "echo $PPID"));
    }

    [Fact]
    public void Uname_release_is_the_host_version_with_umlmicro()
    {
        var native = GuestRunner.Native(_dir.Path, "uname", "-r");
        var guest = GuestRunner.Run(_dir.Path, "uname", "-r");
        Expect.ExitCode(0, guest);
        Assert.EndsWith("-umlmicro\n", guest.Stdout);
        var version = Regex.Match(native.Stdout, @"^\d+(\.\d+)*").Value;
        Assert.True(guest.Stdout == version + "-umlmicro\n", $"expected {version}-umlmicro (host: {native.Stdout.Trim()})\n{guest}");
    }

    [Fact]
    public void Uname_system_machine_and_node_are_the_hosts()
    {
        Expect.SameAsNative(GuestRunner.Native(_dir.Path, "uname", "-s", "-m", "-n"),
                            GuestRunner.Run(_dir.Path, "uname", "-s", "-m", "-n"));
    }

    [Theory]
    [InlineData("exit 0", 0)]
    [InlineData("exit 7", 7)]
    [InlineData("exit 255", 255)]
    [InlineData("kill -TERM $$", 143)]
    [InlineData("kill -9 $$", 137)]
    [InlineData("kill -SEGV $$", 139)]
    public void Exit_status_is_pid_1s_or_128_plus_the_signal(string script, int expected)
    {
        var native = GuestRunner.Native(_dir.Path, "sh", "-c", script);
        Expect.ExitCode(expected, native); // the truth this test compares with
        Expect.ExitCode(expected, GuestRunner.Run(_dir.Path, "sh", "-c", script));
    }

    [Fact]
    public void A_real_segfault_is_status_139_as_natively()
    {
        var py = Tools.Python3;
        string[] args = ["-c", "import ctypes; ctypes.string_at(0)"];
        var native = GuestRunner.Native(_dir.Path, py, args);
        Expect.ExitCode(139, native);
        Expect.SameAsNative(native, GuestRunner.Run(_dir.Path, py, args));
    }

    [Fact]
    public void Fork_wait4_and_waitid_agree_on_virtual_pids_as_natively()
    {
        var native = GuestRunner.Native(_dir.Path, fixtures["fork_tree"]);
        Assert.Contains("PASSED", native.Stdout);
        Expect.SameAsNative(native, GuestRunner.Run(_dir.Path, fixtures["fork_tree"]));
    }

    [Fact]
    public void Fork_returns_a_small_virtual_pid()
    {
        var r = GuestRunner.Run(_dir.Path, fixtures["fork_tree"], "--print-pids");
        Expect.ExitCode(0, r);
        var m = Regex.Match(r.Stdout, @"^pid (\d+), first child (\d+)$", RegexOptions.Multiline);
        Assert.True(m.Success, r.ToString());
        Assert.Equal(1, int.Parse(m.Groups[1].Value));
        var child = int.Parse(m.Groups[2].Value);
        Assert.True(child > 1 && child < 1000, $"the first child's pid {child} is not a small virtual pid\n{r}");
    }

    [Fact]
    public void Threads_have_distinct_small_virtual_tids()
    {
        var r = GuestRunner.Run(_dir.Path, fixtures["threads"], "--print-tids");
        Expect.ExitCode(0, r);
        Assert.Contains("pid 1\n", r.Stdout);
        var tids = Regex.Matches(r.Stdout, @"^tid (\d+)$", RegexOptions.Multiline).Select(m => int.Parse(m.Groups[1].Value)).ToList();
        Assert.True(tids.Count == 4, r.ToString());
        Assert.True(tids.Distinct().Count() == 4 && tids.All(t => t > 1 && t < 1000),
            $"thread ids {string.Join(", ", tids)} are not distinct small virtual tids\n{r}");
    }

    [Fact]
    public void Threads_join_and_signal_themselves_as_natively()
    {
        var native = GuestRunner.Native(_dir.Path, fixtures["threads"]);
        Assert.Contains("PASSED", native.Stdout);
        Expect.SameAsNative(native, GuestRunner.Run(_dir.Path, fixtures["threads"]));
    }

    [Fact]
    public void Python_threads_and_a_subprocess_work_as_natively()
    {
        const string script = """
            import os, subprocess, sys, threading
            results = []
            lock = threading.Lock()
            def work(i):
                s = sum(range(i * 10000))
                with lock:
                    results.append((i, s, threading.get_native_id() != 0))
            threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
            for t in threads: t.start()
            for t in threads: t.join()
            print(sorted(results))
            out = subprocess.run(["sh", "-c", "echo from child $(echo nested)"], capture_output=True, text=True, check=True)
            print(out.stdout.strip())
            p = subprocess.Popen([sys.executable, "-c", "import sys; print(sys.stdin.read().upper())"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            print(p.communicate("piped through a python child")[0].strip(), p.returncode)
            sys.exit(5)
            """;
        var native = GuestRunner.Native(_dir.Path, Tools.Python3, "-c", script);
        Expect.ExitCode(5, native);
        Expect.SameAsNative(native, GuestRunner.Run(_dir.Path, Tools.Python3, "-c", script));
    }

    [Fact]
    public void Python_sees_pid_1_and_its_child_sees_pid_1_as_parent()
    {
        const string script = """
            import os, subprocess
            print(os.getpid(), os.getppid())
            print(subprocess.run(["sh", "-c", "echo $PPID"], capture_output=True, text=True).stdout.strip())
            """;
        Expect.Success("1 0\n1\n", GuestRunner.Run(_dir.Path, Tools.Python3, "-c", script));
    }

    [Fact]
    public void Shell_background_jobs_and_wait_report_statuses_as_natively()
    {
        const string script = "(exit 3) & a=$!; (exit 4) & b=$!; wait $a; echo a=$?; wait $b; echo b=$?; " +
                              "sleep 10 & c=$!; kill $c; wait $c; echo c=$?";
        Expect.SameAsNative(GuestRunner.Native(_dir.Path, "sh", "-c", script), GuestRunner.Run(_dir.Path, "sh", "-c", script));
    }

    [Fact]
    public void Children_of_a_parent_that_ignores_sigchld_leave_no_zombie_and_their_pids_are_gone_as_natively()
    {
        // The host reaps them itself, and no wait of the guest's tells the kernel.
        const string script = """
            import os, signal, time
            signal.signal(signal.SIGCHLD, signal.SIG_IGN)
            pids = []
            for i in range(3):
                pid = os.fork()
                if pid == 0:
                    os._exit(0)
                pids.append(pid)
            time.sleep(0.3)
            print('listed in /proc:', [str(p) in os.listdir('/proc') for p in pids])
            for p in pids:
                try:
                    os.kill(p, 0)
                    print('kill: alive')
                except ProcessLookupError:
                    print('kill: ESRCH')
            try:
                os.waitpid(-1, 0)
            except ChildProcessError:
                print('wait: ECHILD')
            """;
        var native = GuestRunner.Native(_dir.Path, Tools.Python3, "-c", script);
        Expect.Success("listed in /proc: [False, False, False]\nkill: ESRCH\nkill: ESRCH\nkill: ESRCH\nwait: ECHILD\n", native);
        Expect.SameAsNative(native, GuestRunner.Run(_dir.Path, Tools.Python3, "-c", script));
    }
}
