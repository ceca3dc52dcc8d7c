namespace UmlMicro.Supervisor.Cli;

/// <summary>A usage error: printed as one line, exit status 2.</summary>
public sealed class UsageError(string message) : Exception(message);

/// <summary>`umlmicro run` as typed: the options before PROGRAM, then PROGRAM and its arguments untouched.</summary>
public sealed record RunOptions(string? ConfigFile, IReadOnlyList<string> Settings, string Program, IReadOnlyList<string> Argv, bool Help)
{
    public const string RunHelp = """
        usage: umlmicro run [OPTIONS] [--] PROGRAM [ARGS...]

        Runs PROGRAM (looked up in PATH like a shell does) as guest pid 1 under the UmlMicro kernel. The guest
        inherits the environment and the current directory. The exit status is guest pid 1's, 128+N when a
        signal N killed it, 124 when --timeout ended the guest, 125 when the kernel itself failed, and 2 for
        a usage or configuration error.

        options:
          --mode MODE     trap path: seccomp (the default: a filter traps only routed calls, passed calls
                          never stop unless --trace or --stats asks to see every call), tt (PTRACE_SYSCALL,
                          2 stops per call, emulated calls are nullified into getpid) or sysemu
                          (PTRACE_SYSEMU, 1 stop per emulated call, passed calls are re-issued)
          --cpus N        virtual CPUs the guest sees (default: the host's CPU count)
          --mem SIZE      limit on the memory the guest commits over all its processes (512M, 1G; K, M, G
                          and T are powers of 1024): an mmap, brk or mremap beyond it fails with ENOMEM,
                          so malloc returns NULL (default: no limit)
          --max-procs N   at most N guest processes at once, zombies included until they are reaped (default 0:
                          no limit); a fork, vfork or clone beyond it fails with EAGAIN, as RLIMIT_NPROC does,
                          and the host never creates the child. Threads do not count (Linux's RLIMIT_NPROC counts
                          them): a limit on processes should not depend on how many threads a runtime starts
          --max-files N   the guest starts with RLIMIT_NOFILE N, soft and hard: opening more files fails with
                          EMFILE. The guest may change it as natively, but a hard limit above N is EPERM even
                          for root, as without CAP_SYS_RESOURCE (default 0: the user's limits)
          --timeout DURATION
                          wall-clock limit for the whole guest (500ms, 30s, 2m, 1h; a plain number is seconds;
                          default 0: none): when it passes, every guest process is killed and umlmicro exits
                          with status 124, as coreutils' timeout does
          --net host|none the guest's network: the host's (the default; the guest uses it but cannot configure
                          it) or none (a private network with only loopback up)
          --deterministic-layout
                          the same program gets the same addresses in every run (the host's address-space
                          randomisation is off for the guest; default: randomised as on the host)
          --root DIR      the guest's root is host directory DIR (default /), read-only under a private
                          copy-on-write layer that is thrown away when the guest ends
          --keep-changes DIR  keep that copy-on-write layer in DIR (made if missing) instead
          --bind HOST[:GUEST][:ro]  mount host directory HOST at GUEST (default: the same path); repeatable
          --tmpfs PATH    mount a private in-memory filesystem at guest path PATH; repeatable
          --isolate       do not mount the current directory writable (by default it is, at its own path,
                          when the root is /): nothing of the host is then writable
          --config FILE   configuration file (default: configs/default.json next to umlmicro)
          --trace FILE    write one JSON object per guest syscall to FILE
          --stats         print counts and p50/p99 latencies per server and per syscall on exit
          -h, --help      this text

        """;

    /// <summary>Options that take a value, and the configuration key each sets.</summary>
    private static readonly Dictionary<string, string> ValueOptions = new()
    {
        ["--mode"] = "Kernel:Mode",
        ["--cpus"] = "Kernel:Cpus",
        ["--trace"] = "Kernel:Trace",
        ["--mem"] = "Mm:MemoryLimit",
        ["--max-procs"] = "Kernel:MaxProcs",
        ["--max-files"] = "Kernel:MaxFiles",
        ["--timeout"] = "Kernel:Timeout",
        ["--net"] = "Kernel:Net",
        ["--root"] = "Vfs:Root",
        ["--keep-changes"] = "Vfs:KeepChanges",
    };

    /// <summary>Options that may be repeated, each time adding one element to a list in the configuration.</summary>
    private static readonly Dictionary<string, string> ListOptions = new()
    {
        ["--bind"] = "Vfs:Binds",
        ["--tmpfs"] = "Vfs:Tmpfs",
    };

    public static RunOptions Parse(IReadOnlyList<string> args)
    {
        string? config = null;
        var settings = new List<string>();
        var counts = new Dictionary<string, int>();
        int i = 0;
        for (; i < args.Count; i++)
        {
            var a = args[i];
            if (a == "--") { i++; break; }
            if (a is "-h" or "--help") return new RunOptions(null, [], "", [], Help: true);
            if (!a.StartsWith('-') || a == "-") break;
            var (name, inline) = a.IndexOf('=') is var eq and > 0 ? (a[..eq], a[(eq + 1)..]) : (a, null);
            if (name == "--stats" && inline is null) { settings.Add("--Kernel:Stats=true"); continue; }
            if (name == "--deterministic-layout" && inline is null) { settings.Add("--Mm:DeterministicLayout=true"); continue; }
            if (name == "--isolate" && inline is null) { settings.Add("--Vfs:Isolate=true"); continue; }
            if (ListOptions.TryGetValue(name, out var listKey))
            {
                string item = inline ?? (i + 1 < args.Count ? args[++i] : throw new UsageError($"option {name} needs a value"));
                int index = counts[listKey] = counts.GetValueOrDefault(listKey);
                counts[listKey]++;
                settings.Add($"--{listKey}:{index}={item}");
                continue;
            }
            if (name != "--config" && !ValueOptions.ContainsKey(name))
                throw new UsageError($"unknown option {name} (see umlmicro run --help)");
            string value = inline ?? (i + 1 < args.Count ? args[++i] : throw new UsageError($"option {name} needs a value"));
            if (name == "--config") config = value;
            else
            {
                if (name == "--cpus" && (!int.TryParse(value, out var n) || n < 1 || n > 1024))
                    throw new UsageError($"--cpus wants a number from 1 to 1024, not '{value}'");
                if (name == "--mem" && MemorySize.Parse(value, out _) is { } problem)
                    throw new UsageError($"--mem: {problem}");
                if (name is "--max-procs" or "--max-files" && !int.TryParse(value, System.Globalization.NumberStyles.None, null, out _))
                    throw new UsageError($"{name} wants a number (0 for no limit), not '{value}'");
                if (name == "--max-procs" && GuestLimits.ProcsProblem(int.Parse(value)) is { } badProcs)
                    throw new UsageError($"--max-procs: {badProcs}");
                if (name == "--max-files" && GuestLimits.FilesProblem(int.Parse(value)) is { } badFiles)
                    throw new UsageError($"--max-files: {badFiles}");
                if (name == "--net" && value is not ("host" or "none"))
                    throw new UsageError($"--net wants host or none, not '{value}'");
                if (name == "--timeout" && Duration.Parse(value, out _) is { } badTime)
                    throw new UsageError($"--timeout: {badTime}");
                settings.Add($"--{ValueOptions[name]}={value}");
            }
        }
        if (i >= args.Count) throw new UsageError("no PROGRAM to run (see umlmicro run --help)");
        return new RunOptions(config, settings, args[i], args.Skip(i + 1).ToList(), Help: false);
    }
}
