namespace UmlMicro.Tests.Integration;

/// <summary>
/// Virtual CPUs and their run policy, seen from the guest: two threads that spin without a syscall report
/// whether the other one ran meanwhile (tests/fixtures/spin_pair.c). Timing is measured in bench/, never here.
/// </summary>
public sealed class SchedulerTests(FixturePrograms fixtures) : IClassFixture<FixturePrograms>, IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private const string BothRan = "thread 0: other ran meanwhile: yes\nthread 1: other ran meanwhile: yes\n";
    private const string NeitherRan = "thread 0: other ran meanwhile: no\nthread 1: other ran meanwhile: no\n";

    /// <summary>Each thread spins 200 ms, or 1 s where preemption must be seen: long enough that Sched's first decision
    /// (a JIT server's first call, on a loaded machine) comes while both still spin.</summary>
    private RunResult SpinPair(int cpus, string policy, params string[] args) => SpinPair(cpus, policy, 200, args);

    private RunResult SpinPair(int cpus, string policy, int ms, params string[] args) => GuestRunner.Run(
        new RunSpec(_dir.Path, fixtures["spin_pair"], [ms.ToString(), .. args])
        {
            Options = ["--cpus", cpus.ToString()],
            Environment = { ["UMLMICRO_Sched__Policy"] = policy },
        });

    [Fact]
    public void A_guest_started_at_a_nice_value_starts_there_as_a_native_program_does()
    {
        // nice -n 7 umlmicro run -- sh -c '...': pid 1 and what it starts see nice 7, in Sched's record (nice) and in stat.
        const string script = "nice; cut -d' ' -f19 /proc/self/stat";
        using var native = RunningProcess.Start("nice", ["-n", "7", "/bin/sh", "-c", script], _dir.Path, GuestRunner.BaseEnvironment(), null);
        var expected = native.WaitForExit(GuestRunner.DefaultTimeout);
        Assert.Equal("7\n7\n", expected.Stdout);
        using var guest = RunningProcess.Start("nice", ["-n", "7", GuestRunner.Supervisor, "run", "--", "/bin/sh", "-c", script],
            _dir.Path, GuestRunner.BaseEnvironment(), null);

        Expect.SameAsNative(expected, guest.WaitForExit(GuestRunner.DefaultTimeout));
    }

    [Fact]
    public void Round_robin_preempts_so_two_spinning_threads_share_one_vcpu()
    {
        Expect.Success(BothRan, SpinPair(1, "round-robin", 1000));
    }

    [Fact]
    public void Fair_share_preempts_so_two_spinning_threads_share_one_vcpu()
    {
        Expect.Success(BothRan, SpinPair(1, "fair-share", 1000));
    }

    /// <summary>The kernel preempted them, not only the host: --stats counts the round-robin preemptions.</summary>
    [Fact]
    public void Stats_count_the_preemptions_of_two_spinning_threads_under_one_vcpu()
    {
        var r = GuestRunner.Run(new RunSpec(_dir.Path, fixtures["spin_pair"], ["1000"]) { Options = ["--cpus", "1", "--stats"] });
        Expect.Success(BothRan, r);
        var line = r.StderrLines.FirstOrDefault(l => l.StartsWith("vcpus 1, policy round-robin", StringComparison.Ordinal));
        Assert.True(line is not null, $"no vcpus line in the stats\n{r}");
        var m = System.Text.RegularExpressions.Regex.Match(line!, @"(\d+) ticks, (\d+) preemptions");
        Assert.True(m.Success && int.Parse(m.Groups[2].Value) >= 2, $"two threads spinning 1 s each on one vCPU with a 10 ms quantum: no preemptions?\n{r}");
    }

    [Fact]
    public void An_uncontended_guest_never_ticks()
    {
        var r = GuestRunner.Run(new RunSpec(_dir.Path, "sh", ["-c", "echo a | cat"]) { Options = ["--cpus", "4", "--stats"] });
        Expect.Success("a\n", r);
        Assert.Contains("vcpus 4, policy round-robin, quantum 10 ms: 0 ticks, 0 preemptions (0 decisions by sched, 0 ticks held by the kernel)", r.Stderr);
    }

    [Fact]
    public void Fifo_never_preempts_so_one_vcpu_runs_one_spinning_thread_to_its_end()
    {
        Expect.Success(NeitherRan, SpinPair(1, "fifo"));
    }

    [Fact]
    public void Sched_yield_gives_the_vcpu_to_the_waiting_thread_even_under_fifo()
    {
        Expect.Success(BothRan, SpinPair(1, "fifo", "yield"));
    }

    [Theory]
    [InlineData("round-robin")]
    [InlineData("fifo")]
    public void Two_vcpus_run_two_threads_at_once(string policy)
    {
        Expect.Success(BothRan, SpinPair(2, policy));
    }

    /// <summary>
    /// A thread blocked in the host (here: in read on a pipe, in seccomp mode without a stop) must not hold the only
    /// vCPU, or the thread that is to wake it would never run: a shell pipeline where every stage waits on the next.
    /// </summary>
    [Theory]
    [InlineData("round-robin")]
    [InlineData("fifo")]
    public void Threads_blocked_in_the_host_do_not_hold_the_only_vcpu(string policy)
    {
        var r = GuestRunner.Run(new RunSpec(_dir.Path, "sh", ["-c", "seq 1 3000 | sort -rn | head -1; echo x | cat | cat | wc -l"])
        {
            Options = ["--cpus", "1"],
            Environment = { ["UMLMICRO_Sched__Policy"] = policy },
        });
        Expect.Success("3000\n1\n", r);
    }

    /// <summary>
    /// A vfork parent waits for its child uninterruptibly, so a preemption aimed at it never stops it: the
    /// scheduler must not keep the vCPU promised to it, or the child that would release it never runs.
    /// </summary>
    [Fact]
    public void Vfork_and_exec_beside_a_spinning_thread_finish_under_one_vcpu()
    {
        Expect.Success("vfork+exec while spinning: 30/30\n",
            GuestRunner.Run(_dir.Path, ["--cpus", "1"], fixtures["vfork_busy"]));
    }

    [Fact]
    public void Python_threads_waiting_on_each_other_finish_under_one_vcpu()
    {
        const string script = """
            import threading, queue
            q, r = queue.Queue(), queue.Queue()
            def worker():
                while (item := q.get()) is not None: r.put(item * 2)
            ts = [threading.Thread(target=worker) for _ in range(3)]
            for t in ts: t.start()
            for i in range(300): q.put(i)
            for _ in ts: q.put(None)
            for t in ts: t.join()
            print(sum(r.get() for _ in range(300)))
            """;
        var r = GuestRunner.Run(new RunSpec(_dir.Path, "python3", ["-c", script]) { Options = ["--cpus", "1"] });
        Expect.Success("89700\n", r);
    }

    /// <summary>
    /// Sched keeps the scheduling attributes, as Linux does: root lowers and raises nice values (its own, a process
    /// group's, a user's), takes SCHED_FIFO, SCHED_RR and SCHED_DEADLINE and reads them back; children inherit them,
    /// reset-on-fork resets them; a plain user may raise its nice value but not lower it (EACCES), nor touch root's
    /// process or take a real-time class (EPERM). The same lines as a native run as root (tests/fixtures/sched_attr.c).
    /// </summary>
    [Fact]
    public void Scheduling_attributes_are_kept_and_checked_as_natively()
    {
        if (Native.geteuid() != 0)
            Assert.Fail("the native run takes real-time classes and becomes another user: the suite must run as root");
        var native = GuestRunner.Native(_dir.Path, fixtures["sched_attr"]);
        Assert.Contains("deadline: ok", native.Stdout);
        Expect.SameAsNative(native, GuestRunner.Run(_dir.Path, fixtures["sched_attr"]));
    }

    [Fact]
    public void An_orphaned_grandchild_gets_guest_pid_1_as_its_parent()
    {
        Expect.Success("before: my parent is the child: yes\nafter: my parent is 1\n", GuestRunner.Run(_dir.Path, fixtures["orphan"]));
    }
}
