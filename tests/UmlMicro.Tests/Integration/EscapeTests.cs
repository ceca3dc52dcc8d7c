using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;

namespace UmlMicro.Tests.Integration;

/// <summary>
/// The escape suite (issue 13): a hostile guest running as root (tests/fixtures/escape_probe.c) tries every known way
/// out — calls the kernel never sees (its own seccomp user notification, CLONE_UNTRACED), the empty and NULL path
/// forms and inode ioctls on files of the read-only layer, host pids (F_SETOWN, /proc), host-wide state (priorities,
/// SysV and POSIX queues, loopback addresses, hostname, AF_UNIX and abstract sockets) and the two races (a flipped
/// path string, a scribbled scratch area) — and each test checks FROM THE HOST that nothing happened: the host's files
/// outside what the guest was given (content, mode, owner, flags, times), a 0600 secret outside --root, victim
/// processes the test started (alive, not stopped, not reniced), queues, addresses, hostname, sockets, and that nothing
/// of the guest runs once umlmicro has exited.
///
/// One guest run per configuration — default mounts or <c>--root DIR --isolate</c>, as root or as an unprivileged
/// user — made by <see cref="EscapeRuns"/> the first time a test asks for it; the tests then read what it recorded.
/// The trap mode is the suite's (<c>UMLMICRO_Kernel__Mode</c>, as tests/run.sh runs the integration tests in each).
/// Everything a run creates on the host is removed right after it, whatever the tests then find.
/// </summary>
public sealed class EscapeTests(EscapeRuns runs) : IClassFixture<EscapeRuns>
{
    public static readonly string[] ConfigNames = ["default/root", "isolate/root", "default/unprivileged", "isolate/unprivileged"];
    public static TheoryData<string> Configs => new(ConfigNames);

    [Theory, MemberData(nameof(Configs))]
    public void Escape_seccomp_user_notification_reaches_nothing(string config)
    {
        var c = runs.Check(config, "notif");
        c.FileUnchanged("host/target-notif");
        c.VictimIntact("notif");
        c.SecretNotIn("notif");
        c.Done();
    }

    [Theory, MemberData(nameof(Configs))]
    public void Escape_clone_untraced_children_stay_in_the_guest(string config)
    {
        var c = runs.Check(config, "untraced", "clone3");
        foreach (var label in new[] { "untraced", "clone3" })
        {
            c.FileUnchanged($"host/target-{label}");
            c.VictimIntact(label);
            c.SecretNotIn(label);
            // A correct kernel traces the child (or refuses the flag); it must never tell the parent it is the child.
            if (c.Run.Lines(label).Contains($"{label}: parent told 0")) c.Fail($"{label}: the parent was told 0 (the child is not the kernel's)");
        }
        if (c.Run.Leftovers.Count > 0)
            c.Fail("still running after umlmicro exited: " + string.Join(", ", c.Run.Leftovers));
        c.Done();
    }

    [Theory, MemberData(nameof(Configs))]
    public void Escape_empty_path_forms_and_inode_ioctls_leave_read_only_files_alone(string config)
    {
        var c = runs.Check(config, "ro ");
        foreach (var kind in EscapeRun.ReadOnlyKinds) c.FileUnchanged(c.Run.ReadOnlyKey(kind));
        c.Done();
    }

    [Theory, MemberData(nameof(Configs))]
    public void Escape_host_pids_are_neither_learned_nor_signalled(string config)
    {
        var c = runs.Check(config, "setown", "leak");
        c.VictimIntact("setown");
        var oracle = c.Run.Lines("setown oracle").SingleOrDefault();
        var m = oracle is null ? null : Regex.Match(oracle, @"victim (.*), unused (.*)$");
        if (m is null || !m.Success) c.Fail("no setown oracle line");
        else if (m.Groups[1].Value != m.Groups[2].Value)
            c.Fail($"F_SETOWN tells a live host pid ({m.Groups[1].Value}) from an unused one ({m.Groups[2].Value})");

        int maxpid = c.Run.MaxGuestPid;
        string lockVictim = c.Run.Victims["lock"].Pid.ToString();
        foreach (var line in c.Run.Lines("leak"))
            if (Regex.IsMatch(line, $@"\b{lockVictim}\b")) c.Fail($"the host pid {lockVictim} of a host process leaks: {line}");
        // The pids each source shows must be guest pids (the largest the guest had: {maxpid}).
        var pids = new List<(string Source, int Pid)>();
        foreach (var line in c.Run.Lines("leak ns_last_pid: "))
            if (int.TryParse(line["leak ns_last_pid: ".Length..], out var p)) pids.Add(("ns_last_pid", p));
        if (c.Run.Lines("leak sched: ").FirstOrDefault() is { } first && Regex.Match(first, @"\((\d+), #threads") is { Success: true } s)
            pids.Add(("/proc/self/sched", int.Parse(s.Groups[1].Value)));
        foreach (var line in c.Run.Lines("leak locks: "))
            if (Regex.Match(line, @"^leak locks: \d+: (?:-> )?\S+\s+\S+\s+\S+\s+(-?\d+)\s") is { Success: true } l)
                pids.Add(("/proc/locks", int.Parse(l.Groups[1].Value)));
        foreach (var (source, pid) in pids)
            if (pid > maxpid) c.Fail($"{source} shows pid {pid}, not a guest pid (the guest's largest is {maxpid})");
        c.Done();
    }

    [Theory, MemberData(nameof(Configs))]
    public void Escape_host_processes_are_not_reniced(string config)
    {
        var c = runs.Check(config, "prio");
        c.VictimIntact("prio", nice: true);
        c.VictimIntact("priouser", nice: true);
        c.Done();
    }

    [Theory, MemberData(nameof(Configs))]
    public void Escape_host_message_queues_are_neither_removed_nor_written(string config)
    {
        var c = runs.Check(config, "ipc");
        if (c.Run.MsgAfter != c.Run.MsgBefore) c.Fail($"SysV queue {c.Run.MsgId}: {c.Run.MsgBefore} before, {c.Run.MsgAfter} after");
        if (c.Run.MqAfter != c.Run.MqBefore) c.Fail($"POSIX queue {c.Run.MqName}: {c.Run.MqBefore} before, {c.Run.MqAfter} after");
        c.Done();
    }

    [Theory, MemberData(nameof(Configs))]
    public void Escape_host_loopback_and_hostname_stay(string config)
    {
        var c = runs.Check(config, "net", "uts");
        // An unprivileged user can change neither natively (CAP_NET_ADMIN, CAP_SYS_ADMIN over the host's namespaces):
        // the host kernel refuses it whatever umlmicro does, so the check could not fail; the run does not try.
        if (c.Run.Unprivileged) return;
        // The runs of the other configurations go on meanwhile: each looks for its own addresses and name only.
        foreach (var addr in c.Run.Addresses)
            if (c.Run.LoAfter?.Contains($"inet {addr}/", StringComparison.Ordinal) == true)
                c.Fail($"the host's loopback got {addr}:\n--- before ---\n{c.Run.LoBefore}--- after ---\n{c.Run.LoAfter}");
        if (c.Run.UtsAfter.Split('/').Contains(c.Run.UtsName)) c.Fail($"the host's hostname/domainname changed: {c.Run.UtsBefore} -> {c.Run.UtsAfter}");
        c.Done();
    }

    [Theory, MemberData(nameof(Configs))]
    public void Escape_host_unix_sockets_receive_nothing(string config)
    {
        var c = runs.Check(config, "unix");
        foreach (var (name, what) in c.Run.SocketsReached) c.Fail($"the host socket {name} {what}");
        c.Done();
    }

    [Theory, MemberData(nameof(Configs))]
    public void Escape_racing_a_flipped_path_reaches_no_host_file(string config)
    {
        var c = runs.Check(config, "flip");
        c.FileUnchanged("host/target-flip");
        if (c.Run.After.ContainsKey("host/flip-created")) c.Fail("host/flip-created was created on the host");
        c.SecretNotIn("flip");
        c.Done();
    }

    [Theory, MemberData(nameof(Configs))]
    public void Escape_racing_the_scratch_area_reaches_no_host_file(string config)
    {
        var c = runs.Check(config, "scratch");
        c.FileUnchanged("host/target-scratch");
        c.SecretNotIn("scratch");
        c.Done();
    }

    [Theory, MemberData(nameof(Configs))]
    public void Escape_leaves_every_host_file_outside_the_guest_as_it_was(string config)
    {
        var c = runs.Check(config, "");
        foreach (var key in c.Run.Before.Keys.Union(c.Run.After.Keys).Order()) c.FileUnchanged(key);
        if (c.Run.Isolated && (c.Run.Result.Stdout + c.Run.Result.Stderr).Contains(c.Run.Secret, StringComparison.Ordinal))
            c.Fail("the secret outside --root was read");
        c.Done();
    }
}

/// <summary>What a test found wrong in a run; <see cref="Done"/> fails with all of it and the guest's lines about it.</summary>
public sealed class EscapeCheck(EscapeRun run, string[] prefixes)
{
    // A run that did not get through every case proves nothing: it fails every test.
    private readonly List<string> _failures = run.Incomplete is { } why ? [why] : [];
    public EscapeRun Run => run;

    public void Fail(string what) => _failures.Add(what);

    public void FileUnchanged(string key)
    {
        run.Before.TryGetValue(key, out var before);
        run.After.TryGetValue(key, out var after);
        if (before != after) Fail($"{key} changed on the host: {before?.ToString() ?? "(absent)"} -> {after?.ToString() ?? "(absent)"}");
    }

    /// <summary>Alive and not stopped; with <paramref name="nice"/> also not reniced (the PRIO_USER attack renices
    /// every process of the user, the other victims of an unprivileged run too: only the priority test holds that against
    /// the run, on its own two victims).</summary>
    public void VictimIntact(string name, bool nice = false)
    {
        var v = run.Victims[name];
        string before = v.Initial, after = run.VictimsAfter[name];
        if (!nice) (before, after) = (before.Split(',')[0], after.Split(',')[0]);
        if (after != before) Fail($"host victim {name} (pid {v.Pid}, {v.Command}): {before} -> {after}");
    }

    public void SecretNotIn(string prefix)
    {
        if (run.Secret.Length > 0 && run.Isolated && run.Lines(prefix).Any(l => l.Contains(run.Secret, StringComparison.Ordinal)))
            Fail($"{prefix}: the 0600 host file outside --root was read");
    }

    public void Done()
    {
        var lines = prefixes.Length == 0 ? [] : run.Result.StdoutLines.Where(l => prefixes.Any(p => l.StartsWith(p, StringComparison.Ordinal))).ToArray();
        Assert.True(_failures.Count == 0,
            $"{run.Config} ({run.Mode}): the guest reached the host:\n  " + string.Join("\n  ", _failures) +
            $"\n--- what the guest printed about it ---\n{string.Join("\n", lines)}\n--- the run ---\n[exit {run.Result.ExitCode}]\n{run.Result.Command}\n--- stderr ---\n{run.Result.Stderr}");
    }
}

/// <summary>The runs of the escape suite, one per configuration, made when first asked for and kept.</summary>
public sealed class EscapeRuns : IDisposable
{
    private readonly Lazy<string> _binDir = new(CompileProbe);
    private Dictionary<string, Task<EscapeRun>>? _runs;

    /// <summary>The run of CONFIG. The first call starts the runs of all four configurations at once: each guest
    /// start costs seconds of mostly waiting, and the runs use distinct users, addresses and names throughout.</summary>
    public EscapeCheck Check(string config, params string[] prefixes)
    {
        lock (this)
            _runs ??= EscapeTests.ConfigNames.Select((name, i) => (name, i)).ToDictionary(c => c.name,
                c => Task.Run(() => EscapeRun.Execute(c.name, c.i, Path.Combine(_binDir.Value, "escape_probe"))));
        return new EscapeCheck(_runs[config].GetAwaiter().GetResult(), prefixes);
    }

    /// <summary>The probe, static (a --root tree has no libraries), readable by the unprivileged user.</summary>
    private static string CompileProbe()
    {
        var dir = Directory.CreateTempSubdirectory("umlmicro-escape-bin-").FullName;
        File.SetUnixFileMode(dir, (UnixFileMode)0b111_101_101);
        var output = Path.Combine(dir, "escape_probe");
        var psi = new ProcessStartInfo(Tools.Gcc) { RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "-static", "-O2", "-pthread", "-Wall", "-o", output, Path.Combine(RepoRoot.Find(), "tests", "fixtures", "escape_probe.c") })
            psi.ArgumentList.Add(a);
        using var gcc = Process.Start(psi)!;
        var errors = gcc.StandardError.ReadToEnd();
        gcc.WaitForExit();
        Assert.True(gcc.ExitCode == 0, $"gcc -static escape_probe.c failed (a static libc is in libc6-dev):\n{errors}");
        return dir;
    }

    public void Dispose()
    {
        if (_runs is not null)
            try { Task.WaitAll(_runs.Values.ToArray()); } catch (AggregateException) { } // each cleans up after itself
        if (_binDir.IsValueCreated)
            try { Directory.Delete(_binDir.Value, true); } catch (IOException) { }
    }
}

/// <summary>The state of a host file the suite watches: what lsattr, stat and the content say.</summary>
public sealed record FileState(string Type, string Mode, uint Uid, uint Gid, long Size, string Content, int Flags, string Mtime, string Ctime, string Atime)
{
    public override string ToString() =>
        $"[{Type} {Mode} {Uid}:{Gid} size {Size} flags 0x{Flags:x} mtime {Mtime} ctime {Ctime} atime {Atime} content {Content}]";
}

/// <summary>A host process the test started for the guest to attack.</summary>
public sealed record Victim(string Name, Process Process, int Pid, string Command)
{
    public string Initial { get; set; } = "";
}

/// <summary>One guest run of the suite: the host set up, the guest run, the host looked at again, everything removed.</summary>
public sealed class EscapeRun
{
    /// <summary>The unprivileged user of configuration N (and the user whose processes PRIO_USER names in every
    /// run): a uid of its own rather than nobody's, because the PRIO_USER attack, if it works, renices every process
    /// of that user on the host — others may run things as nobody, and the runs of the four configurations overlap.</summary>
    public int UnprivilegedUid => 64711 + Index;

    /// <summary>The loopback addresses this run's guest tries to add (one by netlink, one by ioctl).</summary>
    public string[] Addresses => [$"127.77.13.{2 * Index + 1}", $"127.77.13.{2 * Index + 2}"];
    public string UtsName { get; } = "umlesc-" + Guid.NewGuid().ToString("N")[..8];

    public static readonly string[] ReadOnlyKinds = ["fchownat", "fchmodat2", "utimensat", "setflags", "fsxattr", "fchown", "fchmod"];

    public required string Config { get; init; }
    public required int Index { get; init; }
    public required string Mode { get; init; }
    public bool Isolated => Config.StartsWith("isolate", StringComparison.Ordinal);
    public bool Unprivileged => Config.EndsWith("unprivileged", StringComparison.Ordinal);
    public RunResult Result { get; private set; } = new("", -1, "", "");
    public string Secret { get; private set; } = "";
    public Dictionary<string, FileState> Before { get; private set; } = [];
    public Dictionary<string, FileState> After { get; private set; } = [];
    public Dictionary<string, Victim> Victims { get; } = [];
    public Dictionary<string, string> VictimsAfter { get; } = [];
    public List<string> Leftovers { get; } = [];
    public int MsgId { get; private set; } = -1;
    public string MsgBefore { get; private set; } = "";
    public string MsgAfter { get; private set; } = "";
    public string MqName { get; private set; } = "";
    public string MqBefore { get; private set; } = "";
    public string MqAfter { get; private set; } = "";
    public string? LoBefore { get; private set; }
    public string? LoAfter { get; private set; }
    public string UtsBefore { get; private set; } = "";
    public string UtsAfter { get; private set; } = "";
    public List<(string Name, string What)> SocketsReached { get; } = [];
    public int MaxGuestPid => Lines("maxpid: ").Select(l => int.Parse(l["maxpid: ".Length..])).DefaultIfEmpty(0).Single();

    /// <summary>Why the run does not count (the guest did not start, or a case ran out of time), or null.</summary>
    public string? Incomplete =>
        Result.ExitCode != 0 ? $"the guest run failed (exit {Result.ExitCode}): it attempted nothing, so it proves nothing"
        : !Result.StdoutLines.Any(l => l.StartsWith("maxpid: ", StringComparison.Ordinal)) ? "the probe did not finish"
        : Lines("").FirstOrDefault(l => l.EndsWith("case ended by signal 14", StringComparison.Ordinal)) is { } late ? $"a case ran out of time: {late}"
        : null;

    public IEnumerable<string> Lines(string prefix) => Result.StdoutLines.Where(l => l.StartsWith(prefix, StringComparison.Ordinal));

    public string ReadOnlyKey(string kind) => Isolated ? $"root/ro/ro-{kind}" : $"host/ro-{kind}";


    public static EscapeRun Execute(string config, int index, string probe)
    {
        var run = new EscapeRun { Config = config, Index = index, Mode = Environment.GetEnvironmentVariable("UMLMICRO_Kernel__Mode") is { Length: > 0 } m ? m : "seccomp" };
        if (run.Unprivileged && Native.geteuid() != 0)
            Assert.Fail("the unprivileged runs start umlmicro with setpriv as another user: the suite must run as root");
        run.Go(probe);
        return run;
    }

    // ------------------------------------------------------------------ the run
    private string _base = "", _host = "", _work = "", _root = "";
    private uint _uid, _gid;
    private readonly List<Socket> _sockets = [];
    private readonly Dictionary<string, Socket> _namedSockets = [];
    private string _mqHandle = "";
    private string _hostnameBefore = "", _domainBefore = "";

    private void Go(string probe)
    {
        using var marker = new RunMarker();
        try
        {
            SetUp(probe, out var program, out var options, out var args);
            Before = Snapshot();
            SnapshotHostState(before: true);

            var env = GuestRunner.BaseEnvironment();
            foreach (var (k, v) in marker.Environment) env[k] = v;
            env["TMPDIR"] = Path.Combine(_base, "tmp");
            env["HOME"] = Path.Combine(_base, "home");
            // The four runs start their servers at once, on a machine other builds may load heavily.
            env["UMLMICRO_Servers__HandshakeTimeoutMs"] = "60000";
            var argv = new List<string>();
            string exe = GuestRunner.Supervisor;
            if (Unprivileged)
            {
                exe = Tools.Require("setpriv", "util-linux");
                argv.AddRange([$"--reuid={UnprivilegedUid}", $"--regid={UnprivilegedUid}", "--clear-groups", "--", GuestRunner.Supervisor]);
            }
            argv.Add("run");
            argv.AddRange(options);
            argv.Add("--");
            argv.Add(program);
            argv.AddRange(args);
            using (var p = RunningProcess.Start(exe, argv, _work, env, null))
                Result = p.WaitForExit(TimeSpan.FromSeconds(120));

            // Nothing of the guest may run once umlmicro has exited (what it killed may take a moment to be reaped):
            // found by the marker in the environment, and by the run's directory in the command line.
            List<HostProcesses.Info> Left() => marker.Leftovers().Concat(OfThisRun()).DistinctBy(l => l.Pid).ToList();
            HostProcesses.Eventually(() => Left().Count == 0, TimeSpan.FromSeconds(2));
            var left = Left();
            Leftovers.AddRange(left.Select(l => $"{l.Pid} {l.Comm} (parent {l.PPid}, state {l.State})"));
            foreach (var l in left) Native.kill(l.Pid, HostProcesses.SIGKILL); // before they do more, then look
            After = Snapshot();
            SnapshotHostState(before: false);
        }
        finally
        {
            CleanUp();
        }
    }

    /// <summary>Live processes, not the victims, whose command line names this run's directory (the probe's does).</summary>
    private List<HostProcesses.Info> OfThisRun()
    {
        var found = new List<HostProcesses.Info>();
        foreach (var p in HostProcesses.All())
        {
            if (p.State is 'Z' or 'X' || Victims.Values.Any(v => v.Pid == p.Pid) || p.Pid == Environment.ProcessId) continue;
            string cmdline;
            try { cmdline = File.ReadAllText($"/proc/{p.Pid}/cmdline"); }
            catch (IOException) { continue; }
            catch (UnauthorizedAccessException) { continue; }
            if (cmdline.Contains(_base, StringComparison.Ordinal)) found.Add(p);
        }
        return found;
    }

    private void SetUp(string probe, out string program, out List<string> options, out List<string> args)
    {
        _uid = _gid = Unprivileged ? (uint)UnprivilegedUid : Native.geteuid();
        _base = Directory.CreateTempSubdirectory("umlmicro-escape-").FullName;
        Chmod(_base, 0b111_101_101);
        _host = MakeDir("host");
        _work = MakeDir("work");
        MakeDir("tmp");
        MakeDir("home");
        Secret = "UMLMICRO-ESCAPE-SECRET-" + Guid.NewGuid().ToString("N")[..12];
        WriteFile(Path.Combine(_host, "secret"), Secret + "\n", 0b110_000_000);
        foreach (var t in new[] { "notif", "untraced", "clone3", "flip", "scratch" })
            WriteFile(Path.Combine(_host, $"target-{t}"), $"original {t}\n", 0b110_100_100);
        WriteFile(Path.Combine(_host, "lock"), "", 0b110_100_100);
        WriteFile(Path.Combine(_work, "flip-allowed"), "allowed\n", 0b110_100_100);

        options = [];
        args = [];
        string roDir = _host;
        if (Isolated)
        {
            _root = MakeDir("root");
            MakeDir("root/bin");
            Chmod(MakeDir("root/tmp"), 0b111_111_111 | 0x200 /* sticky */);
            roDir = MakeDir("root/ro");
            File.Copy(probe, Path.Combine(_root, "bin", "escape_probe"));
            Chmod(Path.Combine(_root, "bin", "escape_probe"), 0b111_101_101);
            program = "/bin/escape_probe";
            options.AddRange(["--root", _root, "--isolate"]);
        }
        else program = probe;
        foreach (var kind in ReadOnlyKinds) WriteFile(Path.Combine(roDir, $"ro-{kind}"), $"read-only {kind}\n", 0b110_100_100);
        string Guest(string hostPath) => Isolated ? "/" + Path.GetRelativePath(_root, hostPath) : hostPath;

        // Everything the guest's user's, so that natively nothing but the kernel would keep the guest out.
        foreach (var path in Directory.EnumerateFileSystemEntries(_base, "*", SearchOption.AllDirectories)) Native.lchown(path, _uid, _gid);

        // Victims, as the guest's own user (an unprivileged user's guest could reach nobody else's natively).
        StartVictim("notif", "sleep", "1000");
        StartVictim("untraced", "sleep", "1000");
        StartVictim("clone3", "sleep", "1000");
        StartVictim("setown", "sleep", "1000");
        StartVictim("prio", "setsid", "sleep", "1000"); // its own process group, which PRIO_PGRP names
        StartVictim("priouser", "sleep", "1000"); // the unprivileged user's: PRIO_USER names that user
        StartVictim("lock", Tools.Python3, "-c", "import fcntl, sys, time\nf = open(sys.argv[1], 'a')\nfcntl.flock(f, fcntl.LOCK_EX)\nprint('locked', flush=True)\ntime.sleep(1000)", Path.Combine(_host, "lock"));
        var lockPid = Victims["lock"].Pid.ToString();
        Assert.True(HostProcesses.Eventually(() => File.ReadAllText("/proc/locks").Split('\n').Any(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries).ElementAtOrDefault(4) == lockPid), TimeSpan.FromSeconds(10)),
            "the lock victim never took its lock");

        // Queues: a SysV one and a POSIX one, the guest's user's, as an attacker would find them.
        int key = 0x5e5c0000 | Random.Shared.Next(1, 0xffff);
        MsgId = Native.msgget(key, 0x200 /* IPC_CREAT */ | 0x400 /* IPC_EXCL */ | 0b110_000_000);
        Assert.True(MsgId >= 0, $"msgget failed: errno {Marshal.GetLastPInvokeError()}");
        var ds = new byte[120];
        Assert.True(Native.msgctl(MsgId, 2 /* IPC_STAT */, ds) == 0, "msgctl IPC_STAT");
        BitConverter.TryWriteBytes(ds.AsSpan(4), _uid);
        BitConverter.TryWriteBytes(ds.AsSpan(8), _gid);
        Assert.True(Native.msgctl(MsgId, 1 /* IPC_SET */, ds) == 0, $"msgctl IPC_SET: errno {Marshal.GetLastPInvokeError()}");
        MqName = "/umlmicro-escape-" + Guid.NewGuid().ToString("N")[..12];
        int mq = Native.mq_open(MqName, 0x40 /* O_CREAT */ | 2 /* O_RDWR */ | 0x80 /* O_EXCL */, 0b110_000_000, IntPtr.Zero);
        Assert.True(mq >= 0, $"mq_open failed: errno {Marshal.GetLastPInvokeError()}");
        _mqHandle = MqName;
        Native.fchown(mq, _uid, _gid);
        Native.close(mq);

        // Sockets: path ones outside the root (under the default mounts the guest sees the host's / read-only, and a
        // read-only mount does not keep anyone from connecting to a socket on it), abstract ones always.
        string abstractName = "umlmicro-escape-" + Guid.NewGuid().ToString("N")[..12];
        if (Isolated)
        {
            Listen("host/dgram.sock", Path.Combine(_host, "dgram.sock"), SocketType.Dgram);
            Listen("host/stream.sock", Path.Combine(_host, "stream.sock"), SocketType.Stream);
        }
        Listen($"@{abstractName}-s", "\0" + abstractName + "-s", SocketType.Stream);
        Listen($"@{abstractName}-d", "\0" + abstractName + "-d", SocketType.Dgram);

        // What the guest is handed: the host's names, as an attacker who guessed them would have them.
        args.Add("tries=200"); // a few hundred: today's races are won within tens
        if (Isolated) args.Add($"secret={Path.Combine(_host, "secret")}");
        foreach (var t in new[] { "notif", "untraced", "clone3", "flip", "scratch" }) args.Add($"target.{t}={Path.Combine(_host, $"target-{t}")}");
        foreach (var v in new[] { "notif", "untraced", "clone3", "setown", "prio" }) args.Add($"victim.{v}={Victims[v].Pid}");
        args.Add($"prio.uid={UnprivilegedUid}");
        foreach (var kind in ReadOnlyKinds) args.Add($"ro.{kind}={Guest(Path.Combine(roDir, $"ro-{kind}"))}");
        args.Add($"msg.id={MsgId}");
        args.Add($"msg.key=0x{key:x}");
        args.Add($"mq.name={MqName}");
        if (Isolated)
        {
            args.Add($"unix.dgram={Path.Combine(_host, "dgram.sock")}");
            args.Add($"unix.stream={Path.Combine(_host, "stream.sock")}");
        }
        args.Add($"unix.abstract={abstractName}");
        if (!Unprivileged)
        {
            args.Add($"net.netlink={Addresses[0]}");
            args.Add($"net.ioctl={Addresses[1]}");
            args.Add($"uts.name={UtsName}");
        }
        args.Add(Isolated ? "flip.allowed=/dev/null" : "flip.allowed=/dev/null,flip-allowed");
        args.Add($"created.flip={Path.Combine(_host, "flip-created")}");
        args.Add("scratch.cow=/umlmicro-escape-cow");

        // Times that a read does not change (relatime updates atime only when it is older than mtime or a day old).
        foreach (var path in Directory.EnumerateFileSystemEntries(_base, "*", SearchOption.AllDirectories))
            if (path.StartsWith(_host, StringComparison.Ordinal) || (_root.Length > 0 && path.StartsWith(_root, StringComparison.Ordinal)))
                Native.SetTimes(path, atime: DateTimeOffset.UtcNow.AddHours(1).ToUnixTimeSeconds(), mtime: 1_000_000_000);
        foreach (var v in Victims.Values) v.Initial = VictimState(v.Pid);
    }

    private void StartVictim(string name, string program, params string[] args)
    {
        var psi = new ProcessStartInfo(Unprivileged ? Tools.Require("setpriv", "util-linux") : program)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        var user = name == "priouser" ? UnprivilegedUid : (int)_uid;
        if (Unprivileged || name == "priouser")
        {
            psi.FileName = Tools.Require("setpriv", "util-linux");
            foreach (var a in new[] { $"--reuid={user}", $"--regid={user}", "--clear-groups", "--", program }) psi.ArgumentList.Add(a);
        }
        foreach (var a in args) psi.ArgumentList.Add(a);
        var p = Process.Start(psi)!;
        Victims[name] = new Victim(name, p, p.Id, string.Join(' ', psi.ArgumentList.Prepend(psi.FileName)));
        // setpriv and setsid exec what they run: the pid stays; wait until it has.
        var comm = Path.GetFileName(program) == "python3" ? "python3" : "sleep";
        Assert.True(HostProcesses.Eventually(() => HostProcesses.Stat(p.Id)?.Comm.StartsWith(comm[..5], StringComparison.Ordinal) == true, TimeSpan.FromSeconds(10)),
            $"victim {name} did not start");
    }

    /// <summary>Alive (not dead, a zombie or stopped) and its nice value: what the guest must not change.</summary>
    public static string VictimState(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var rest = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            var state = rest[0] switch { "Z" or "X" => "dead", "T" or "t" => "stopped", _ => "running" };
            return $"{state}, nice {rest[16]}";
        }
        catch (IOException) { return "gone"; }
    }

    private void Listen(string name, string address, SocketType type)
    {
        var s = new Socket(AddressFamily.Unix, type, ProtocolType.Unspecified);
        _sockets.Add(s);
        s.Bind(new UnixDomainSocketEndPoint(address));
        if (type == SocketType.Stream) s.Listen(8);
        if (!address.StartsWith('\0')) Chmod(address, 0b111_111_111);
        _namedSockets[name] = s;
    }

    private void SnapshotHostState(bool before)
    {
        if (!before)
            foreach (var v in Victims.Values) VictimsAfter[v.Name] = VictimState(v.Pid);
        string msg = MsgState(), mq = MqState();
        string? lo = Tools.Find("ip") is { } ip && !Unprivileged ? Capture(ip, "-o", "addr", "show", "dev", "lo") : null;
        string uts = $"{File.ReadAllText("/proc/sys/kernel/hostname").Trim()}/{File.ReadAllText("/proc/sys/kernel/domainname").Trim()}";
        if (before)
        {
            (MsgBefore, MqBefore, LoBefore, UtsBefore) = (msg, mq, lo, uts);
            _hostnameBefore = File.ReadAllText("/proc/sys/kernel/hostname").Trim();
            _domainBefore = File.ReadAllText("/proc/sys/kernel/domainname").Trim();
            return;
        }
        (MsgAfter, MqAfter, LoAfter, UtsAfter) = (msg, mq, lo, uts);
        foreach (var (name, s) in _namedSockets)
        {
            if (s.SocketType == SocketType.Dgram && s.Available > 0) SocketsReached.Add((name, $"received a datagram ({s.Available} bytes)"));
            if (s.SocketType == SocketType.Stream && s.Poll(0, SelectMode.SelectRead)) SocketsReached.Add((name, "has a connection waiting"));
        }
    }

    private string MsgState()
    {
        foreach (var line in File.ReadAllLines("/proc/sysvipc/msg").Skip(1))
        {
            var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f.Length > 4 && f[1] == MsgId.ToString()) return $"exists, {f[4]} messages";
        }
        return "removed";
    }

    private string MqState()
    {
        int q = Native.mq_open(MqName, 0 /* O_RDONLY */, 0, IntPtr.Zero);
        if (q < 0) return Marshal.GetLastPInvokeError() == 2 ? "removed" : $"mq_open errno {Marshal.GetLastPInvokeError()}";
        var attr = new long[8];
        Native.mq_getattr(q, attr);
        Native.close(q);
        return $"exists, {attr[3]} messages";
    }

    /// <summary>Every entry under host/ and root/ (the guest was given none of it to change).</summary>
    private Dictionary<string, FileState> Snapshot()
    {
        var all = new Dictionary<string, FileState>();
        foreach (var (label, dir) in new[] { ("host", _host), ("root", _root) })
        {
            if (dir.Length == 0 || !Directory.Exists(dir)) continue;
            foreach (var path in Directory.EnumerateFileSystemEntries(dir, "*", SearchOption.AllDirectories).Append(dir))
                if (Native.State(path) is { } s) all[label + (path == dir ? "" : "/" + Path.GetRelativePath(dir, path))] = s;
        }
        return all;
    }

    private void CleanUp()
    {
        foreach (var v in Victims.Values)
        {
            try { if (!v.Process.HasExited) v.Process.Kill(); v.Process.WaitForExit(5000); }
            catch (InvalidOperationException) { }
            v.Process.Dispose();
        }
        foreach (var s in _sockets) s.Dispose();
        if (MsgId >= 0) Native.msgctl(MsgId, 0 /* IPC_RMID */, null);
        if (_mqHandle.Length > 0) Native.mq_unlink(_mqHandle);
        if (!Unprivileged && _hostnameBefore.Length > 0)
        {
            if (File.ReadAllText("/proc/sys/kernel/hostname").Trim() != _hostnameBefore) Native.SetHostname(_hostnameBefore, domain: false);
            if (File.ReadAllText("/proc/sys/kernel/domainname").Trim() != _domainBefore) Native.SetHostname(_domainBefore, domain: true);
        }
        if (!Unprivileged && Tools.Find("ip") is { } ip)
        {
            var lo = Capture(ip, "-o", "addr", "show", "dev", "lo");
            foreach (var (addr, prefix) in new[] { (Addresses[0], 32), (Addresses[1], 8) })
                if (lo.Contains($"inet {addr}/", StringComparison.Ordinal)) Capture(ip, "addr", "del", $"{addr}/{prefix}", "dev", "lo");
        }
        if (_base.Length == 0) return;
        // Immutable or append-only files cannot be removed: clear those flags first.
        foreach (var path in Directory.EnumerateFileSystemEntries(_base, "*", SearchOption.AllDirectories)) Native.ClearImmutable(path);
        // The kernel's state the unprivileged user may have left (its memory directory lives in /dev/shm).
        var tmp = Path.Combine(_base, "tmp");
        if (Directory.Exists(tmp))
            foreach (var state in Directory.EnumerateDirectories(tmp, "umlmicro-*"))
                try { Directory.Delete(Path.Combine("/dev/shm", Path.GetFileName(state)), true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        try { Directory.Delete(_base, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    private string MakeDir(string rel)
    {
        var dir = Directory.CreateDirectory(Path.Combine(_base, rel)).FullName;
        Chmod(dir, 0b111_101_101);
        return dir;
    }

    private static void WriteFile(string path, string content, int mode)
    {
        File.WriteAllText(path, content);
        Chmod(path, mode);
    }

    private static void Chmod(string path, int mode) => Assert.True(Native.chmod(path, (uint)mode) == 0, $"chmod {path}");

    private static string Capture(string program, params string[] args)
    {
        var psi = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        _ = err.Result;
        return output;
    }
}

/// <summary>The few libc calls the suite needs on the host side.</summary>
internal static class Native
{
    [DllImport("libc")] public static extern uint geteuid();
    [DllImport("libc", SetLastError = true)] public static extern int kill(int pid, int sig);
    [DllImport("libc", SetLastError = true)] public static extern int chmod(string path, uint mode);
    [DllImport("libc", SetLastError = true)] public static extern int lchown(string path, uint uid, uint gid);
    [DllImport("libc", SetLastError = true)] public static extern int fchown(int fd, uint uid, uint gid);
    [DllImport("libc", SetLastError = true)] public static extern int close(int fd);
    [DllImport("libc", SetLastError = true)] private static extern int open(string path, int flags);
    [DllImport("libc", SetLastError = true)] private static extern int ioctl(int fd, ulong request, ref int arg);
    [DllImport("libc", SetLastError = true)] private static extern nint read(int fd, byte[] buf, nint count);
    [DllImport("libc", SetLastError = true)] private static extern int lstat(string path, byte[] buf);
    [DllImport("libc", SetLastError = true)] private static extern int utimensat(int dirfd, string path, long[] times, int flags);
    [DllImport("libc", SetLastError = true)] public static extern int msgget(int key, int flags);
    [DllImport("libc", SetLastError = true)] public static extern int msgctl(int id, int cmd, byte[]? buf);
    [DllImport("libc", SetLastError = true)] public static extern int mq_open(string name, int flags, uint mode, IntPtr attr);
    [DllImport("libc", SetLastError = true)] public static extern int mq_getattr(int mq, long[] attr);
    [DllImport("libc", SetLastError = true)] public static extern int mq_unlink(string name);
    [DllImport("libc", SetLastError = true)] private static extern int sethostname(byte[] name, nint len);
    [DllImport("libc", SetLastError = true)] private static extern int setdomainname(byte[] name, nint len);

    private const ulong FS_IOC_GETFLAGS = 0x80086601, FS_IOC_SETFLAGS = 0x40086602;
    private const int O_RDONLY = 0, O_NONBLOCK = 0x800, O_NOFOLLOW = 0x20000, O_CLOEXEC = 0x80000;
    private const int FS_IMMUTABLE_FL = 0x10, FS_APPEND_FL = 0x20;

    public static void SetTimes(string path, long atime, long mtime) =>
        utimensat(-100 /* AT_FDCWD */, path, [atime, 0, mtime, 0], 0x100 /* AT_SYMLINK_NOFOLLOW */);

    public static void SetHostname(string name, bool domain)
    {
        var bytes = Encoding.ASCII.GetBytes(name);
        if (domain) setdomainname(bytes, bytes.Length);
        else sethostname(bytes, bytes.Length);
    }

    /// <summary>lsattr's flags (FS_IOC_GETFLAGS), -1 for what has none (a socket).</summary>
    public static int Flags(string path)
    {
        int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) return -1;
        int flags = 0;
        int r = ioctl(fd, FS_IOC_GETFLAGS, ref flags);
        close(fd);
        return r < 0 ? -1 : flags;
    }

    /// <summary>The content, read without .NET's advisory lock (a victim holds one on a file of the tree).</summary>
    private static byte[] ReadAll(string path)
    {
        int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) return Encoding.ASCII.GetBytes($"(open errno {Marshal.GetLastPInvokeError()})");
        var all = new List<byte>();
        var buf = new byte[65536];
        nint n;
        while ((n = read(fd, buf, buf.Length)) > 0) all.AddRange(buf.AsSpan(0, (int)n));
        close(fd);
        return all.ToArray();
    }

    public static void ClearImmutable(string path)
    {
        int flags = Flags(path);
        if (flags < 0 || (flags & (FS_IMMUTABLE_FL | FS_APPEND_FL)) == 0) return;
        int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) return;
        flags &= ~(FS_IMMUTABLE_FL | FS_APPEND_FL);
        ioctl(fd, FS_IOC_SETFLAGS, ref flags);
        close(fd);
    }

    public static FileState? State(string path)
    {
        var st = new byte[144];
        if (lstat(path, st) != 0) return null;
        uint mode = BitConverter.ToUInt32(st, 24);
        string type = (mode & 0xf000) switch { 0x8000 => "file", 0x4000 => "dir", 0xc000 => "socket", 0xa000 => "link", _ => "other" };
        string Time(int offset) => $"{BitConverter.ToInt64(st, offset)}.{BitConverter.ToInt64(st, offset + 8):d9}";
        string content = "-";
        if (type == "file")
        {
            var bytes = ReadAll(path);
            content = bytes.Length < 64 ? "\"" + Encoding.UTF8.GetString(bytes).Replace("\n", "\\n") + "\""
                : Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(bytes))[..16];
        }
        return new FileState(type, Convert.ToString(mode & 0xfff, 8), BitConverter.ToUInt32(st, 28), BitConverter.ToUInt32(st, 32),
            BitConverter.ToInt64(st, 48), content, type is "file" or "dir" ? Flags(path) : -1, Time(88), Time(104),
            // A directory's atime changes whenever it is listed, which the guest may do.
            type == "dir" ? "-" : Time(72));
    }
}
