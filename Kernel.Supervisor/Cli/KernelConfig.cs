using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Reflection;
using Microsoft.Extensions.Configuration;
using UmlMicro.Supervisor.Servers;

namespace UmlMicro.Supervisor.Cli;

/// <summary>The configuration file, as bound by Microsoft.Extensions.Configuration (see configs/default.json).</summary>
public sealed class KernelConfig
{
    public KernelSection Kernel { get; set; } = new();
    public ServersSection Servers { get; set; } = new();
    public VfsSection Vfs { get; set; } = new();
    public MmSection Mm { get; set; } = new();
    public SchedSection Sched { get; set; } = new();
    public GuestSection Guest { get; set; } = new();

    /// <summary>Values the binder accepts but the kernel cannot use: each is a one-line error naming the key.</summary>
    public void Validate(string file)
    {
        void Fail(string key, string problem) => throw new ConfigError($"config {file}: {key}: {problem}");
        if (Kernel.Cpus is < 0 or > 1024) Fail("Kernel:Cpus", $"{Kernel.Cpus} is not from 0 (the host's count) to 1024");
        // uname's fields hold 64 bytes and a NUL (__NEW_UTS_LEN): a longer name would reach the guest cut short.
        foreach (var (key, value) in new[] { ("Kernel:Release", Kernel.Release), ("Kernel:Hostname", Kernel.Hostname) })
            if (System.Text.Encoding.UTF8.GetByteCount(value) > 64) Fail(key, $"{System.Text.Encoding.UTF8.GetByteCount(value)} bytes, more than uname's 64");
        if (GuestLimits.ProcsProblem(Kernel.MaxProcs) is { } badProcs) Fail("Kernel:MaxProcs", badProcs);
        if (GuestLimits.FilesProblem(Kernel.MaxFiles) is { } badFiles) Fail("Kernel:MaxFiles", badFiles);
        if (Duration.Parse(Kernel.Timeout, out var timeout) is { } badTimeout) Fail("Kernel:Timeout", badTimeout);
        if (Kernel.Net is not ("host" or "none")) Fail("Kernel:Net", $"'{Kernel.Net}' is not host or none");
        Kernel.TimeoutSpan = timeout;
        if (Servers.HandshakeTimeoutMs is < 1 or > 600_000) Fail("Servers:HandshakeTimeoutMs", $"{Servers.HandshakeTimeoutMs} is not from 1 to 600000");
        if (Servers.CallTimeoutMs is < 1 or > 3_600_000) Fail("Servers:CallTimeoutMs", $"{Servers.CallTimeoutMs} is not from 1 to 3600000");
        if (Servers.RestartLimit is < 0 or > 1_000_000) Fail("Servers:RestartLimit", $"{Servers.RestartLimit} is not from 0 (never restart) to 1000000");
        if (Servers.RestartWindowSeconds is < 1 or > 86_400) Fail("Servers:RestartWindowSeconds", $"{Servers.RestartWindowSeconds} is not from 1 to 86400");
        foreach (var (name, command) in new[] { ("Vfs", Servers.Vfs), ("Mm", Servers.Mm), ("Sched", Servers.Sched) })
            if (command is not { Command.Length: > 0 }) Fail($"Servers:{name}:Command", "missing");
        if (!Vfs.Root.StartsWith('/') || !Native.Interop.IsDirectory(Vfs.Root)) Fail("Vfs:Root", $"'{Vfs.Root}' is not an absolute path of a host directory");
        for (int i = 0; i < Vfs.Binds.Count; i++)
            if (BindSpec.Parse(Vfs.Binds[i]) is { Problem: { } problem }) Fail($"Vfs:Binds:{i}", problem);
        for (int i = 0; i < Vfs.Tmpfs.Count; i++)
            if (!Vfs.Tmpfs[i].StartsWith('/')) Fail($"Vfs:Tmpfs:{i}", $"'{Vfs.Tmpfs[i]}' is not an absolute guest path");
        if (Vfs.KeepChanges.Length > 0 && Native.Interop.Exists(Vfs.KeepChanges) && !Native.Interop.IsDirectory(Vfs.KeepChanges)) Fail("Vfs:KeepChanges", $"'{Vfs.KeepChanges}' is a file, not a directory");
        if (MemorySize.Parse(Mm.MemoryLimit, out long limit) is { } badSize) Fail("Mm:MemoryLimit", badSize);
        Mm.MemoryLimitBytes = limit;
        if (Sched.QuantumMs is < 2 or > 10_000) Fail("Sched:QuantumMs", $"{Sched.QuantumMs} is not from 2 to 10000");
        if (Guest.WorkDir.Length > 0 && !Guest.WorkDir.StartsWith('/')) Fail("Guest:WorkDir", $"'{Guest.WorkDir}' is not an absolute guest path");
        for (int i = 0; i < Guest.Env.Count; i++)
            if (Guest.Env[i].IndexOf('=') <= 0) Fail($"Guest:Env:{i}", $"'{Guest.Env[i]}' is not NAME=VALUE");
        if (Guest.Image.Length > 0 && Vfs.Root != "/") Fail("Guest:Image", "an image is the guest's root: it cannot go with Vfs:Root (--root)");
    }
}

public sealed class KernelSection
{
    /// <summary>Trap path: tt, sysemu or seccomp (see README, "Command line").</summary>
    public string Mode { get; set; } = "seccomp";
    /// <summary>Virtual CPUs the guest sees; 0 means the host's CPU count.</summary>
    public int Cpus { get; set; }
    /// <summary>uname release; empty means the host's version number with "-umlmicro".</summary>
    public string Release { get; set; } = "";
    /// <summary>uname nodename; empty means the host's name.</summary>
    public string Hostname { get; set; } = "";
    public string Trace { get; set; } = "";
    public bool Stats { get; set; }

    /// <summary>Most guest processes (thread groups, zombies included) at once; 0 means no limit. See --max-procs.</summary>
    public int MaxProcs { get; set; }

    /// <summary>The guest's initial RLIMIT_NOFILE, soft and hard; 0 keeps the user's. See --max-files.</summary>
    public int MaxFiles { get; set; }

    /// <summary>Wall-clock limit for the whole guest (30s, 2m, 500ms; a plain number is seconds); empty or 0 means none.</summary>
    public string Timeout { get; set; } = "";

    /// <summary>The guest's network: "host" (the host's, which it cannot configure) or "none" (its own, loopback only).</summary>
    public string Net { get; set; } = "host";

    /// <summary><see cref="Timeout"/> parsed (zero: none), set by <see cref="KernelConfig.Validate"/>.</summary>
    internal TimeSpan TimeoutSpan { get; set; }
}

public sealed class ServersSection
{
    public ServerCommand? Vfs { get; set; }
    public ServerCommand? Mm { get; set; }
    public ServerCommand? Sched { get; set; }
    /// <summary>How long a server may take to start and answer its handshake.</summary>
    public int HandshakeTimeoutMs { get; set; } = 15000;

    /// <summary>How long any request may go unanswered before its server is taken for hung and restarted.</summary>
    public int CallTimeoutMs { get; set; } = 10000;

    /// <summary>Restarts allowed, over all servers, in any <see cref="RestartWindowSeconds"/>; beyond it the guest is ended.</summary>
    public int RestartLimit { get; set; } = 10;

    public int RestartWindowSeconds { get; set; } = 60;
}

public sealed class VfsSection
{
    /// <summary>The host directory that is the guest's root, read-only under a private copy-on-write layer.</summary>
    public string Root { get; set; } = "/";
    /// <summary>Leave the current directory out: nothing of the host is writable.</summary>
    public bool Isolate { get; set; }
    /// <summary>Bind mounts, each "HOST[:GUEST][:ro]".</summary>
    public List<string> Binds { get; set; } = [];
    /// <summary>Guest paths that get a private in-memory filesystem.</summary>
    public List<string> Tmpfs { get; set; } = [];
    /// <summary>A host directory that keeps the copy-on-write layer after the guest ends; empty throws it away.</summary>
    public string KeepChanges { get; set; } = "";
}

/// <summary>A bind mount as written in the config or after --bind: HOST[:GUEST][:ro].</summary>
public sealed record BindSpec(string Host, string Guest, bool ReadOnly, string? Problem)
{
    public static BindSpec Parse(string text)
    {
        var parts = text.Split(':');
        bool ro = parts.Length > 1 && parts[^1] is "ro" or "rw";
        bool readOnly = ro && parts[^1] == "ro";
        if (ro) parts = parts[..^1];
        string host = parts[0], guest = parts.Length > 1 ? parts[1] : parts[0];
        string? problem = parts.Length > 2 ? $"'{text}' is not HOST[:GUEST][:ro]"
            : !Native.Interop.IsDirectory(host) ? $"'{host}' is not a host directory"
            : !guest.StartsWith('/') ? $"'{guest}' is not an absolute guest path"
            : null;
        return new BindSpec(Path.GetFullPath(host.Length > 0 ? host : "/", Native.Interop.HostCwd()), guest, readOnly, problem);
    }
}

public sealed class MmSection
{
    /// <summary>Committed-memory limit for the whole guest: bytes, or a size with K, M, G or T (powers of 1024); 0 means none.</summary>
    public string MemoryLimit { get; set; } = "0";

    /// <summary>Host address-space randomisation off: the same program gets the same addresses in every run.</summary>
    public bool DeterministicLayout { get; set; }

    /// <summary>Debug: compare MM's map with the host's /proc/PID/maps after every memory call (see MapCheck).</summary>
    public bool CheckMaps { get; set; }

    /// <summary><see cref="MemoryLimit"/> in bytes, set by <see cref="KernelConfig.Validate"/>.</summary>
    internal long MemoryLimitBytes { get; set; }
}

/// <summary>Memory sizes as a user writes them: 512M, 1G, 65536, 1.5G is not one (whole numbers only).</summary>
public static class MemorySize
{
    /// <summary>Null and the size in bytes, or what is wrong with <paramref name="text"/>.</summary>
    public static string? Parse(string? text, out long bytes)
    {
        bytes = 0;
        var s = (text ?? "").Trim();
        if (s.Length == 0) return "empty (a size like 512M or 1G, or 0 for none)";
        int shift = char.ToUpperInvariant(s[^1]) switch { 'K' => 10, 'M' => 20, 'G' => 30, 'T' => 40, _ => 0 };
        var digits = shift > 0 ? s[..^1] : s;
        if (!long.TryParse(digits, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long n))
            return $"'{text}' is not a size like 512M or 1G (or 0 for none)";
        if (n > long.MaxValue >> shift) return $"'{text}' is too large";
        bytes = n << shift;
        return null;
    }
}

/// <summary>Durations as a user writes them: 500ms, 30s, 2m, 1h, or a plain number of seconds (1.5 is one and a half).</summary>
public static class Duration
{
    /// <summary>The longest limit accepted: far beyond any run, and well inside what a timer can wait.</summary>
    private static readonly TimeSpan Longest = TimeSpan.FromDays(24);

    /// <summary>Null and the duration (zero: none), or what is wrong with <paramref name="text"/>.</summary>
    public static string? Parse(string? text, out TimeSpan duration)
    {
        duration = TimeSpan.Zero;
        var s = (text ?? "").Trim();
        if (s.Length == 0) return null;
        var (digits, unitMs) = s.EndsWith("ms", StringComparison.OrdinalIgnoreCase) ? (s[..^2], 1.0)
            : char.ToLowerInvariant(s[^1]) switch
            {
                's' => (s[..^1], 1000.0),
                'm' => (s[..^1], 60_000.0),
                'h' => (s[..^1], 3_600_000.0),
                _ => (s, 1000.0),
            };
        const System.Globalization.NumberStyles style = System.Globalization.NumberStyles.AllowDecimalPoint;
        if (!double.TryParse(digits, style, System.Globalization.CultureInfo.InvariantCulture, out double n))
            return $"'{text}' is not a duration like 500ms, 30s, 2m or 1h (a plain number is seconds; 0 for none)";
        if (n * unitMs > Longest.TotalMilliseconds) return $"'{text}' is longer than {Longest.TotalDays:0} days";
        duration = TimeSpan.FromMilliseconds(Math.Ceiling(n * unitMs));
        return null;
    }
}

/// <summary>The process and open-file limits: what a value may be on this host.</summary>
public static class GuestLimits
{
    /// <summary>Linux's own ceiling on pids (PID_MAX_LIMIT on 64-bit).</summary>
    public const int MaxProcsCeiling = 4_194_304;

    public static string? ProcsProblem(int n) =>
        n is < 0 or > MaxProcsCeiling ? $"{n} is not from 0 (no limit) to {MaxProcsCeiling}" : null;

    /// <summary>
    /// The launcher sets RLIMIT_NOFILE to N before the guest's execve: Linux refuses more than fs.nr_open, and a hard
    /// limit above the supervisor's own unless it has CAP_SYS_RESOURCE. Checked here, so that it is a usage error and
    /// not a guest that never starts.
    /// </summary>
    public static string? FilesProblem(int n)
    {
        if (n < 0) return $"{n} is not a number of files (0 keeps the user's limit)";
        if (n == 0) return null;
        if (ReadLong("/proc/sys/fs/nr_open") is { } nrOpen && n > nrOpen) return $"{n} is above the host's fs.nr_open ({nrOpen})";
        if (HostHardFileLimit() is { } hard && n > hard && !HasCapSysResource())
            return $"{n} is above the hard limit on open files this user may raise to ({hard})";
        return null;
    }

    /// <summary>The supervisor's hard RLIMIT_NOFILE (the user's: the .NET runtime raises only the soft one), from /proc.</summary>
    internal static long? HostHardFileLimit()
    {
        foreach (var line in ReadLines("/proc/self/limits"))
            if (line.StartsWith("Max open files", StringComparison.Ordinal))
            {
                var fields = line["Max open files".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
                return fields.Length >= 2 && long.TryParse(fields[1], out var hard) ? hard : null;
            }
        return null;
    }

    private static bool HasCapSysResource()
    {
        const int CAP_SYS_RESOURCE = 24;
        foreach (var line in ReadLines("/proc/self/status"))
            if (line.StartsWith("CapEff:", StringComparison.Ordinal))
                return ulong.TryParse(line[7..].Trim(), System.Globalization.NumberStyles.HexNumber, null, out var caps) &&
                       (caps & (1UL << CAP_SYS_RESOURCE)) != 0;
        return false;
    }

    private static long? ReadLong(string path) =>
        ReadLines(path).FirstOrDefault() is { } l && long.TryParse(l.Trim(), out var v) ? v : null;

    private static string[] ReadLines(string path)
    {
        try
        {
            return File.ReadAllLines(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }
}

public sealed class SchedSection
{
    /// <summary>The run policy of the virtual CPUs: round-robin (preempts after a quantum) or fifo (never preempts).</summary>
    public string Policy { get; set; } = "round-robin";
    /// <summary>Round-robin's time quantum at nice 0, in milliseconds; the tracer ticks every half quantum while vCPUs are contended.</summary>
    public int QuantumMs { get; set; } = 10;
}

/// <summary>How guest pid 1 starts, beyond its program: who it is, where, with what environment, on which image.</summary>
public sealed class GuestSection
{
    /// <summary>A root filesystem tarball or an OCI image (layout directory or oci-archive) that is the guest's root.</summary>
    public string Image { get; set; } = "";
    /// <summary>USER[:GROUP], names or numbers, looked up in the guest's /etc/passwd and /etc/group; empty: the
    /// caller's own (or the image's User).</summary>
    public string User { get; set; } = "";
    /// <summary>The guest path guest pid 1 starts in; empty: the current directory (the image's WorkingDir, or / under
    /// another root).</summary>
    public string WorkDir { get; set; } = "";
    /// <summary>NAME=VALUE set in the guest's environment, over what it inherits (or the image's Env).</summary>
    public List<string> Env { get; set; } = [];
}

/// <summary>A configuration problem the user must fix: printed as one line, exit status 2.</summary>
public sealed class ConfigError(string message) : Exception(message);

public static class KernelConfigLoader
{
    /// <summary>
    /// Reads <paramref name="file"/>, then UMLMICRO_* environment variables (UMLMICRO_Kernel__Cpus=2),
    /// then the command-line settings, later ones winning; unknown keys and bad values are errors.
    /// </summary>
    public static KernelConfig Load(string file, IEnumerable<string> commandLine)
    {
        string io = Native.Interop.DotNetPath(Path.GetFullPath(file, Native.Interop.HostCwd()));
        if (!File.Exists(io)) throw new ConfigError($"config {file}: no such file");
        IConfigurationRoot root;
        try
        {
            root = new ConfigurationBuilder()
                .AddJsonFile(io, optional: false, reloadOnChange: false)
                .AddEnvironmentVariables("UMLMICRO_")
                .AddCommandLine(commandLine.ToArray())
                .Build();
        }
        catch (Exception e) when (e is FormatException or InvalidDataException or System.Text.Json.JsonException)
        {
            throw new ConfigError($"config {file}: not valid JSON: {FirstLine(e.GetBaseException().Message)}");
        }
        CheckKeys(root, typeof(KernelConfig), "", file);
        try
        {
            return root.Get<KernelConfig>() ?? new KernelConfig();
        }
        catch (InvalidOperationException e)
        {
            throw new ConfigError($"config {file}: {FirstLine(e.Message)}");
        }
    }

    private static string FirstLine(string s) => s.Split('\n')[0].Trim();

    /// <summary>
    /// The property of each section type by key. Listed, because a NativeAOT supervisor keeps the properties' metadata
    /// only of types it is told will be read so (<see cref="DynamicallyAccessedMembersAttribute"/>); KernelConfigTests
    /// fails when a section type is missing.
    /// </summary>
    internal static readonly Dictionary<Type, Func<string, PropertyInfo?>> Sections = new()
    {
        [typeof(KernelConfig)] = PropertyOf<KernelConfig>,
        [typeof(KernelSection)] = PropertyOf<KernelSection>,
        [typeof(ServersSection)] = PropertyOf<ServersSection>,
        [typeof(ServerCommand)] = PropertyOf<ServerCommand>,
        [typeof(VfsSection)] = PropertyOf<VfsSection>,
        [typeof(MmSection)] = PropertyOf<MmSection>,
        [typeof(SchedSection)] = PropertyOf<SchedSection>,
        [typeof(GuestSection)] = PropertyOf<GuestSection>,
    };

    private static PropertyInfo? PropertyOf<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicProperties)] T>(string key) =>
        Array.Find(typeof(T).GetProperties(BindingFlags.Public | BindingFlags.Instance), p => p.Name.Equals(key, StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// Every key must name a property (a typo must not be silently ignored), and every value must have the shape and
    /// type of its property: the binder's own complaints name .NET types, and it ignores a list or a section given
    /// as a single value.
    /// </summary>
    private static void CheckKeys(IConfiguration section, Type type, string prefix, string file)
    {
        void Fail(string key, string problem) => throw new ConfigError($"config {file}: {key}: {problem}");
        foreach (var child in section.GetChildren())
        {
            var key = prefix + child.Key;
            var prop = Sections[type](child.Key);
            if (prop is null) throw new ConfigError($"config {file}: unknown key '{key}'");
            var t = Nullable.GetUnderlyingType(prop.PropertyType) ?? prop.PropertyType;
            bool list = t.IsGenericType && t.GetGenericTypeDefinition() == typeof(List<>);
            bool scalar = child.Value is not null;
            if (list)
            {
                if (scalar && child.Value!.Length > 0) Fail(key, $"'{child.Value}' is not a list (write [\"...\"])");
                foreach (var item in child.GetChildren())
                    if (item.Value is null || item.GetChildren().Any()) Fail($"{key}:{item.Key}", "not a string");
            }
            else if (t.IsClass && t != typeof(string))
            {
                if (scalar && child.Value!.Length > 0) Fail(key, $"'{child.Value}' is not a section (write {{ ... }})");
                CheckKeys(child, t, key + ":", file);
            }
            else if (!scalar || child.GetChildren().Any())
                Fail(key, "a single value, not a section or a list");
            else if (t == typeof(int) && !int.TryParse(child.Value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _))
                Fail(key, $"'{child.Value}' is not a whole number from {int.MinValue} to {int.MaxValue}");
            else if (t == typeof(bool) && !bool.TryParse(child.Value, out _))
                Fail(key, $"'{child.Value}' is not true or false");
        }
    }
}
