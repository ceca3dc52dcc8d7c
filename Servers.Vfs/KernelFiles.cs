using System.Text;
using UmlMicro.Contracts.Linux;

namespace UmlMicro.Servers.Vfs;

/// <summary>
/// The files that say what the kernel is, so that they agree with uname, --cpus and --mem (the host's would name
/// the host's kernel, CPUs and memory): /proc/sys/kernel/{osrelease,hostname,ostype}, /proc/cpuinfo,
/// /proc/meminfo and /sys/devices/system/cpu/{online,possible,present}. Each is materialised as a small
/// read-only host file in the VFS's state directory and handed to the host by path: the guest reads it natively,
/// as Linux generates a proc file at open.
/// </summary>
internal sealed class KernelFiles
{
    private readonly Dictionary<string, string> _hostPathOf = new(StringComparer.Ordinal);
    private readonly string _dir;

    public KernelFiles(string dir, string release, string hostname, int cpus, long memoryLimit)
    {
        _dir = dir;
        Directory.CreateDirectory(dir);
        Add("/proc/sys/kernel/osrelease", release);
        Add("/proc/sys/kernel/hostname", hostname);
        Add("/proc/sys/kernel/ostype", "Linux");
        if (cpus > 0)
        {
            // What glibc's sysconf(_SC_NPROCESSORS_*) and /proc/cpuinfo readers count: the guest's virtual CPUs.
            string range = cpus == 1 ? "0" : $"0-{cpus - 1}";
            foreach (var file in new[] { "online", "possible", "present" })
                Add($"/sys/devices/system/cpu/{file}", range);
            Add("/proc/cpuinfo", CpuInfo(cpus));
        }
        if (memoryLimit > 0) Add("/proc/meminfo", MemInfo(memoryLimit));
    }

    /// <summary>The host's /proc/cpuinfo cut to <paramref name="cpus"/> processors (repeating the last one if the
    /// guest has more than the host), numbered from 0.</summary>
    private static string CpuInfo(int cpus)
    {
        var blocks = File.ReadAllText("/proc/cpuinfo").Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        if (blocks.Length == 0) return "";
        var sb = new StringBuilder();
        for (int i = 0; i < cpus; i++)
        {
            var lines = blocks[Math.Min(i, blocks.Length - 1)].Trim('\n').Split('\n')
                .Select(l => l.StartsWith("processor", StringComparison.Ordinal) ? $"processor\t: {i}" : l);
            sb.Append(string.Join('\n', lines)).Append("\n\n");
        }
        return sb.ToString(); // every block ends with an empty line, the last one too, as Linux prints it
    }

    /// <summary>The host's /proc/meminfo with MemTotal at the guest's limit and the free figures no larger.</summary>
    private static string MemInfo(long limit)
    {
        long limitKb = limit / 1024;
        var sb = new StringBuilder();
        foreach (var line in File.ReadAllLines("/proc/meminfo"))
        {
            var parts = line.Split(':', 2);
            string key = parts[0];
            if (key is "MemTotal" or "MemFree" or "MemAvailable" && long.TryParse(parts[1].Trim().Split(' ')[0], out long kb))
                sb.Append($"{key + ":",-16}{Math.Min(kb, limitKb),8} kB\n");
            else
                sb.Append(line).Append('\n');
        }
        return sb.ToString();
    }

    private void Add(string guestPath, string value)
    {
        if (value.Length == 0) return; // not configured: the guest sees the host's file
        string host = Path.Combine(_dir, guestPath.Replace('/', '_').TrimStart('_'));
        File.WriteAllText(host, value.EndsWith('\n') ? value : value + "\n", new UTF8Encoding(false));
        File.SetUnixFileMode(host, UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        _hostPathOf[guestPath] = host;
    }

    /// <summary>
    /// The host file behind a walked guest path, or null when the path is not one of these files. Writing is
    /// EACCES: the kernel's name is the supervisor's configuration, not the guest's to change.
    /// </summary>
    public string? Lookup(string guestPath, bool write, out int errno)
    {
        errno = 0;
        if (!_hostPathOf.TryGetValue(guestPath, out var host)) return null;
        if (write) errno = Errno.EACCES;
        return host;
    }
}
