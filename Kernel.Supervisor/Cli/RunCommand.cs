using System.CommandLine;
using System.Globalization;

namespace UmlMicro.Supervisor.Cli;

/// <summary>
/// `umlmicro run`: its options, each with the configuration key it sets, and PROGRAM. The options come before
/// PROGRAM: from PROGRAM on, or after `--`, everything is the guest's, untouched.
/// </summary>
internal sealed class RunCommand : Command
{
    private enum Kind { Flag, Value, List }

    /// <summary>An option that sets a configuration key: to true, to its value (the last one given), or one element per use.</summary>
    private sealed record Setting(Option Option, string Key, Kind Kind);

    private readonly List<Setting> _settings = [];
    private readonly Option<string[]> _config;
    private readonly Argument<string[]> _program = new("PROGRAM")
    {
        Description = "the program and its arguments, untouched: the options come before it (or before --); with --image, " +
            "the image's Entrypoint and Cmd when none is given",
        Arity = ArgumentArity.ZeroOrMore,
    };

    public RunCommand() : base("run",
        "Runs PROGRAM (looked up in PATH like a shell does) as guest pid 1 under the UmlMicro kernel. The guest inherits " +
        "the environment and the current directory. The exit status is guest pid 1's, 128+N when a signal N killed it, " +
        "124 when --timeout ended the guest, 125 when the kernel itself failed, and 2 for a usage or configuration error.")
    {
        Value("--mode", "MODE", "Kernel:Mode",
            "trap path: seccomp (the default: a filter traps only routed calls, passed calls never stop unless --trace or " +
            "--stats asks to see every call), tt (PTRACE_SYSCALL, 2 stops per call, emulated calls are nullified into " +
            "getpid) or sysemu (PTRACE_SYSEMU, 1 stop per emulated call, passed calls are re-issued)",
            check: null, completions: ["seccomp", "tt", "sysemu"]);
        Value("--cpus", "N", "Kernel:Cpus", "virtual CPUs the guest sees (default: the host's CPU count)",
            v => int.TryParse(v, out var n) && n is >= 1 and <= 1024 ? null : $"--cpus wants a number from 1 to 1024, not '{v}'");
        Value("--mem", "SIZE", "Mm:MemoryLimit",
            "limit on the memory the guest commits over all its processes (512M, 1G; K, M, G and T are powers of 1024): " +
            "an mmap, brk or mremap beyond it fails with ENOMEM, so malloc returns NULL (default: no limit)",
            v => MemorySize.Parse(v, out _) is { } problem ? $"--mem: {problem}" : null);
        Value("--max-procs", "N", "Kernel:MaxProcs",
            "at most N guest processes at once, zombies included until they are reaped (default 0: no limit); a fork, " +
            "vfork or clone beyond it fails with EAGAIN, as RLIMIT_NPROC does, and the host never creates the child. " +
            "Threads do not count (Linux's RLIMIT_NPROC counts them): a limit on processes should not depend on how many " +
            "threads a runtime starts",
            v => Count("--max-procs", v, GuestLimits.ProcsProblem));
        Value("--max-files", "N", "Kernel:MaxFiles",
            "the guest starts with RLIMIT_NOFILE N, soft and hard: opening more files fails with EMFILE. The guest may " +
            "change it as natively, but a hard limit above N is EPERM even for root, as without CAP_SYS_RESOURCE " +
            "(default 0: the user's limits)",
            v => Count("--max-files", v, GuestLimits.FilesProblem));
        Value("--timeout", "DURATION", "Kernel:Timeout",
            "wall-clock limit for the whole guest (500ms, 30s, 2m, 1h; a plain number is seconds; default 0: none): when " +
            "it passes, every guest process is killed and umlmicro exits with status 124, as coreutils' timeout does",
            v => Duration.Parse(v, out _) is { } problem ? $"--timeout: {problem}" : null);
        Value("--net", "host|none", "Kernel:Net",
            "the guest's network: the host's (the default; the guest uses it but cannot configure it) or none (a private " +
            "network with only loopback up)",
            v => v is "host" or "none" ? null : $"--net wants host or none, not '{v}'", completions: ["host", "none"]);
        Flag("--deterministic-layout", "Mm:DeterministicLayout",
            "the same program gets the same addresses in every run (the host's address-space randomisation is off for " +
            "the guest; default: randomised as on the host)");
        Value("--root", "DIR", "Vfs:Root",
            "the guest's root is host directory DIR (default /), read-only under a private copy-on-write layer that is " +
            "thrown away when the guest ends");
        Value("--keep-changes", "DIR", "Vfs:KeepChanges",
            "keep the guest's copy-on-write layer in DIR (made if missing) instead of throwing it away");
        Value("--bind", "HOST[:GUEST][:ro]", "Vfs:Binds",
            "mount host directory HOST at GUEST (default: the same path); repeatable", kind: Kind.List);
        Value("--tmpfs", "PATH", "Vfs:Tmpfs", "mount a private in-memory filesystem at guest path PATH; repeatable", kind: Kind.List);
        Value("--image", "PATH", "Guest:Image",
            "the guest's root is an image: a root filesystem tarball (plain, gzip, zstd or xz) or an OCI image (a layout " +
            "directory or an oci-archive), unpacked once into the user's cache and used read-only under a private " +
            "copy-on-write layer; its config gives the environment, working directory, user and command");
        Value("--user", "USER[:GROUP]", "Guest:User",
            "start the guest as USER (a name or a number, looked up in the guest's /etc/passwd) and GROUP (default: the " +
            "user's); another user than the caller's needs root");
        Value("--workdir", "DIR", "Guest:WorkDir",
            "the guest directory guest pid 1 starts in (default: the current directory, or / under --root or --image, or " +
            "the image's WorkingDir)");
        Value("--env", "NAME=VALUE", "Guest:Env", "set NAME in the guest's environment; repeatable",
            v => v.IndexOf('=') > 0 ? null : $"--env wants NAME=VALUE, not '{v}'", kind: Kind.List);
        Flag("--isolate", "Vfs:Isolate",
            "do not mount the current directory writable (by default it is, at its own path, when the root is /): nothing " +
            "of the host is then writable");
        _config = new Option<string[]>("--config")
        {
            Description = "configuration file (default: configs/default.json next to umlmicro)",
            HelpName = "FILE",
            Arity = ArgumentArity.OneOrMore,
        };
        Add(_config);
        Value("--trace", "FILE", "Kernel:Trace", "write one JSON object per guest syscall to FILE");
        Flag("--stats", "Kernel:Stats", "print counts and p50/p99 latencies per server and per syscall on exit");
        Add(_program);
        // Said plainly, where System.CommandLine would say "Required argument missing for command: 'run'". An image may
        // bring its own command (the configuration's Guest:Image too: Supervisor.Run asks again).
        Validators.Add(r =>
        {
            if (r.GetResult(_program) is not { Tokens.Count: > 0 } && r.GetResult(_settings.First(x => x.Key == "Guest:Image").Option) is not { Implicit: false })
                r.AddError("no PROGRAM to run");
        });
    }

    /// <summary>
    /// Run's arguments with `--` before PROGRAM, where System.CommandLine stops looking for options (it would otherwise
    /// take the guest's `--cpus` for its own). PROGRAM is the first argument that is neither an option nor the value of
    /// one: an option takes the next argument as its value when its arity says it has one and it was not written
    /// `--opt=value`.
    /// </summary>
    public IReadOnlyList<string> MarkGuest(IReadOnlyList<string> args)
    {
        for (int i = 0; i < args.Count; i++)
        {
            string a = args[i];
            if (a == "--") return args;
            if (a.Length < 2 || a[0] != '-') return [.. args.Take(i), "--", .. args.Skip(i)];
            int split = a.IndexOfAny(['=', ':']); // System.CommandLine's separators of --opt=value and --opt:value
            string name = split > 0 ? a[..split] : a;
            var option = Options.Concat(Parents.OfType<Command>().SelectMany(c => c.Options).Where(o => o.Recursive))
                .FirstOrDefault(o => o.Name == name || o.Aliases.Contains(name))
                ?? throw new UsageError($"unknown option {name} (see umlmicro run --help)");
            bool takesValue = option.Arity.MaximumNumberOfValues > 0;
            if (split > 0 && !takesValue) throw new UsageError($"option {name} takes no value (see umlmicro run --help)");
            if (split < 0 && takesValue) i++;
        }
        return args;
    }

    /// <summary>What <paramref name="result"/>, a parse of run's arguments without errors, asks for.</summary>
    public RunOptions Read(ParseResult result)
    {
        var settings = new List<string>();
        foreach (var (option, key, kind) in _settings)
        {
            if (result.GetResult(option) is not { Implicit: false } given) continue; // implicit: a flag not given
            switch (kind)
            {
                case Kind.Flag:
                    settings.Add($"--{key}=true");
                    break;
                case Kind.Value:
                    settings.Add($"--{key}={given.Tokens[^1].Value}");
                    break;
                case Kind.List:
                    settings.AddRange(given.Tokens.Select((t, i) => $"--{key}:{i}={t.Value}"));
                    break;
            }
        }
        var program = result.GetValue(_program) ?? [];
        return new RunOptions(result.GetValue(_config)?.LastOrDefault(), settings, program.FirstOrDefault() ?? "", program.Skip(1).ToList());
    }

    private void Flag(string name, string key, string description)
    {
        var option = new Option<bool>(name) { Description = description, Arity = ArgumentArity.Zero };
        _settings.Add(new Setting(option, key, Kind.Flag));
        Add(option);
    }

    /// <summary>
    /// An option with a value, <paramref name="check"/>ed as given. A string array so that an option given twice is
    /// not an error: the last value is the one that counts, as with most programs' options.
    /// </summary>
    private void Value(string name, string helpName, string key, string description, Func<string, string?>? check = null,
        string[]? completions = null, Kind kind = Kind.Value)
    {
        var option = new Option<string[]>(name) { Description = description, HelpName = helpName, Arity = ArgumentArity.OneOrMore };
        if (check is not null)
        {
            option.Validators.Add(r =>
            {
                if (r.Tokens.Select(t => check(t.Value)).FirstOrDefault(p => p is not null) is { } problem) r.AddError(problem);
            });
        }
        if (completions is not null) option.CompletionSources.Add(completions);
        _settings.Add(new Setting(option, key, kind));
        Add(option);
    }

    /// <summary>A count of --max-procs or --max-files: digits only, then what <paramref name="problem"/> says of it.</summary>
    private static string? Count(string name, string value, Func<int, string?> problem) =>
        !int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int n) ? $"{name} wants a number (0 for no limit), not '{value}'"
        : problem(n) is { } bad ? $"{name}: {bad}"
        : null;
}
