namespace UmlMicro.Tests.Integration;

/// <summary>
/// /proc/sys/kernel says what uname says. The VFS hands the host a path of its own for these files, so this
/// also drives the supervisor's syscall injection (the scratch mapping) and path rewriting for real.
/// </summary>
public sealed class KernelFileTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Proc_sys_kernel_agrees_with_uname()
    {
        var r = GuestRunner.Run(_dir.Path, "sh", "-c",
            "[ \"$(uname -r)\" = \"$(cat /proc/sys/kernel/osrelease)\" ] && echo release;" +
            "[ \"$(uname -n)\" = \"$(cat /proc/sys/kernel/hostname)\" ] && echo hostname;" +
            "[ \"$(uname -v)\" = \"$(cat /proc/sys/kernel/version)\" ] && echo version;" +
            "cat /proc/sys/kernel/ostype; cat /proc/sys/kernel/osrelease");
        Expect.ExitCode(0, r);
        var lines = r.StdoutLines;
        Assert.Equal(["release", "hostname", "version", "Linux"], lines[..4]);
        Assert.EndsWith("-umlmicro", lines[4]);
    }

    [Fact]
    public void The_kernels_name_cannot_be_written_by_the_guest()
    {
        var r = GuestRunner.Run(_dir.Path, "/usr/bin/python3", "-c",
            "import errno\n" +
            "for flags in ('w', 'a', 'r+'):\n" +
            "    try:\n" +
            "        open('/proc/sys/kernel/hostname', flags)\n" +
            "        print(flags, 'opened')\n" +
            "    except OSError as e:\n" +
            "        print(flags, errno.errorcode[e.errno])\n");
        Expect.Success("w EACCES\na EACCES\nr+ EACCES\n", r);
    }

    [Fact]
    public void Rewritten_paths_hold_under_threads_forks_and_a_storm_of_signals()
    {
        // Four threads open the file 300 times each while SIGALRM fires every 200 µs (signals that arrive
        // during an injection are held and sent again); a forked child, with a fresh task, reads it too.
        var r = GuestRunner.Run(_dir.Path, "/usr/bin/python3", "-c", """
            import os, signal, threading
            hits = [0]
            signal.signal(signal.SIGALRM, lambda s, f: hits.__setitem__(0, hits[0] + 1))
            signal.setitimer(signal.ITIMER_REAL, 0.0002, 0.0002)
            want = os.uname().release
            bad = [0]
            def reader():
                for _ in range(300):
                    with open("/proc/sys/kernel/osrelease") as f:
                        if f.read().strip() != want: bad[0] += 1
            ts = [threading.Thread(target=reader) for _ in range(4)]
            [t.start() for t in ts]; [t.join() for t in ts]
            signal.setitimer(signal.ITIMER_REAL, 0, 0)
            pid = os.fork()
            if pid == 0:
                os._exit(0 if open("/proc/sys/kernel/osrelease").read().strip() == want else 1)
            _, st = os.waitpid(pid, 0)
            print("bad", bad[0], "alarms", hits[0] > 0, "child", os.waitstatus_to_exitcode(st))
            """);
        Expect.Success("bad 0 alarms True child 0\n", r);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void Every_way_of_counting_cpus_sees_the_guests_virtual_cpus(int cpus)
    {
        var r = GuestRunner.Run(_dir.Path, ["--cpus", cpus.ToString()], "sh", "-c",
            "nproc; getconf _NPROCESSORS_ONLN; getconf _NPROCESSORS_CONF; grep -c ^processor /proc/cpuinfo;" +
            "/usr/bin/python3 -c 'import os; print(os.cpu_count()); print(len(os.sched_getaffinity(0)))';" +
            "cat /sys/devices/system/cpu/online");
        var n = cpus.ToString();
        Expect.Success($"{n}\n{n}\n{n}\n{n}\n{n}\n{n}\n{(cpus == 1 ? "0" : $"0-{cpus - 1}")}\n", r);
    }

    [Fact]
    public void Affinity_is_set_over_the_guests_cpus_as_natively()
    {
        // On a host with as many CPUs as the guest, every answer is the host's own.
        const string probe = """
            import errno, os
            for cpus in ({0}, {0, 1}, {5}, set(range(64, 70))):
                try:
                    os.sched_setaffinity(0, cpus); print(sorted(cpus)[:2], "ok")
                except OSError as e:
                    print(sorted(cpus)[:2], errno.errorcode[e.errno])
            try:
                os.sched_setaffinity(99999, {0})
            except OSError as e:
                print("no such pid", errno.errorcode[e.errno])
            """;
        var native = GuestRunner.Native(_dir.Path, "/usr/bin/python3", "-c", probe);
        var guest = GuestRunner.Run(_dir.Path, ["--cpus", Environment.ProcessorCount.ToString()], "/usr/bin/python3", "-c", probe);
        Expect.SameAsNative(native, guest);
    }
}
