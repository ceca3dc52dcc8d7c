using UmlMicro.Contracts.Linux;
using UmlMicro.Contracts.Servers;

namespace UmlMicro.Supervisor.Syscalls;

/// <summary>What the host's /proc/TID/status says about a guest task: its credentials as the host enforces them.</summary>
internal static class HostStatus
{
    /// <summary>Capability <paramref name="cap"/> is in the task's effective set.</summary>
    public static bool HasCapability(int tid, int cap) =>
        Field(tid, "CapEff:") is { } hex && (Convert.ToUInt64(hex, 16) & (1UL << cap)) != 0;

    /// <summary>Signals whose default action is to ignore them (Linux's SIG_KERNEL_IGNORE_MASK): SIGCHLD, SIGCONT, SIGURG, SIGWINCH.</summary>
    private const ulong IgnoredByDefault = 1UL << (17 - 1) | 1UL << (18 - 1) | 1UL << (23 - 1) | 1UL << (28 - 1);

    /// <summary>The task's process ignores signal <paramref name="sig"/>: its disposition is SIG_IGN, or SIG_DFL for a signal
    /// whose default is to ignore it. Linux never wakes a task for such a signal, unless the task is traced.</summary>
    public static bool Ignores(int tid, int sig)
    {
        if (sig is < 1 or > 64) return false;
        string? ignored = null, caught = null; // SigIgn comes just before SigCgt: one read of the file for both
        try
        {
            foreach (var line in File.ReadLines($"/proc/{tid}/status"))
            {
                if (line.StartsWith("SigIgn:", StringComparison.Ordinal)) ignored = line[7..].Trim();
                else if (line.StartsWith("SigCgt:", StringComparison.Ordinal))
                {
                    caught = line[7..].Trim();
                    break;
                }
            }
        }
        catch (IOException)
        {
            return false; // gone: its exit comes next
        }
        if (ignored is null || caught is null) return false;
        ulong bit = 1UL << (sig - 1);
        return (Convert.ToUInt64(ignored, 16) & bit) != 0 || ((Convert.ToUInt64(caught, 16) & bit) == 0 && (IgnoredByDefault & bit) != 0);
    }

    /// <summary>The task has no_new_privs set.</summary>
    public static bool NoNewPrivs(int tid) => Field(tid, "NoNewPrivs:") == "1";

    /// <summary>The task's real uid (what PRIO_USER and IOPRIO_WHO_USER match), or null when it is gone.</summary>
    public static uint? RealUid(int tid) =>
        Field(tid, "Uid:") is { } uids && uint.TryParse(uids.Split('\t', ' ')[0], out var uid) ? uid : null;

    /// <summary>The task's id in its innermost pid namespace (the last NSpid field: what the guest's own calls see),
    /// or null when it is gone.</summary>
    public static int? NsPid(int tid) =>
        Field(tid, "NSpid:") is { } ids && int.TryParse(ids.Split('\t', ' ')[^1], out int pid) ? pid : null;

    /// <summary>A task's credentials: <see cref="Fs"/> what files are checked against (fsuid, fsgid, the supplementary
    /// groups, the effective capabilities), <see cref="Access"/> what access(2) checks with (the real ids; a real root's
    /// permitted capabilities, none otherwise).</summary>
    internal sealed record TaskCredentials(Credentials Fs, Credentials Access);

    /// <summary>
    /// The capabilities the kernel's servers grant over what they keep themselves, and the host never sees: the VFS's
    /// trusted.* and security.* attributes (CAP_SYS_ADMIN), Sched's nice values and scheduling classes (CAP_SYS_NICE).
    /// The second wall withholds both from every guest thread on the host (a guest thread must not mount, nor outrank
    /// the tracer); toward the kernel's own objects a guest's root holds them as Linux's root does.
    /// </summary>
    public const ulong KernelKeptCapabilities = 1UL << LinuxFlags.CAP_SYS_ADMIN | 1UL << LinuxFlags.CAP_SYS_NICE;

    /// <summary>A capability set as the kernel's servers count it: with <see cref="KernelKeptCapabilities"/> when it holds
    /// every capability the second wall leaves a guest (<see cref="Cli.HostWall.CapabilityMask"/>: root after execve, until it
    /// drops one or becomes another user). A fixed set, not the task's own bounding set, which a root could shrink to
    /// what it still holds.</summary>
    public static ulong Guest(ulong caps) =>
        (caps & Cli.HostWall.CapabilityMask) == Cli.HostWall.CapabilityMask ? caps | KernelKeptCapabilities : caps;

    /// <summary>
    /// The task's credentials as the kernel counts them (the host's, with <see cref="Guest"/>'s capabilities), or null
    /// when it is gone. The ids read here are the ones the guest's
    /// user namespace maps to the host's (every id to itself for a run by root; the user's own otherwise).
    /// </summary>
    public static TaskCredentials? Credentials(int tid)
    {
        string? uids = null, gids = null, groups = null, prm = null, eff = null;
        try
        {
            foreach (var line in File.ReadLines($"/proc/{tid}/status"))
            {
                if (line.StartsWith("Uid:", StringComparison.Ordinal)) uids = line[4..];
                else if (line.StartsWith("Gid:", StringComparison.Ordinal)) gids = line[4..];
                else if (line.StartsWith("Groups:", StringComparison.Ordinal)) groups = line[7..];
                else if (line.StartsWith("CapPrm:", StringComparison.Ordinal)) prm = line[7..];
                else if (line.StartsWith("CapEff:", StringComparison.Ordinal))
                {
                    eff = line[7..];
                    break; // after the others in the file
                }
            }
        }
        catch (IOException)
        {
            return null;
        }
        if (uids is null || gids is null || groups is null || prm is null || eff is null) return null;
        static uint[] Ids(string ids) => ids.Split(['\t', ' '], StringSplitOptions.RemoveEmptyEntries)
            .Select(g => uint.Parse(g, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        uint[] u = Ids(uids), g = Ids(gids), list = Ids(groups);
        ulong permitted = Guest(Convert.ToUInt64(prm.Trim(), 16)), effective = Guest(Convert.ToUInt64(eff.Trim(), 16));
        // Uid: and Gid: are real, effective, saved, fs.
        return new TaskCredentials(new Credentials(u[3], g[3], list, effective), new Credentials(u[0], g[0], list, u[0] == 0 ? permitted : 0));
    }

    /// <summary>
    /// What Sched checks a scheduling call with about thread <paramref name="tid"/> (guest tid <paramref name="vtid"/>), or
    /// null when it is gone: its real and effective uid, its process's soft RLIMIT_NICE and RLIMIT_RTPRIO (/proc/TID/limits),
    /// and CAP_SYS_NICE as the kernel counts it (<see cref="Guest"/>: the host never grants it).
    /// </summary>
    public static TaskCreds? SchedCreds(int tid, int vtid)
    {
        string? uids = null, eff = null;
        long nice = 0, rtprio = 0;
        try
        {
            foreach (var line in File.ReadLines($"/proc/{tid}/status"))
            {
                if (line.StartsWith("Uid:", StringComparison.Ordinal)) uids = line[4..];
                else if (line.StartsWith("CapEff:", StringComparison.Ordinal))
                {
                    eff = line[7..].Trim();
                    break; // after the others in the file
                }
            }
            foreach (var line in File.ReadLines($"/proc/{tid}/limits"))
            {
                if (line.StartsWith("Max nice priority", StringComparison.Ordinal)) nice = SoftLimit(line);
                else if (line.StartsWith("Max realtime priority", StringComparison.Ordinal)) rtprio = SoftLimit(line);
            }
        }
        catch (IOException)
        {
            return null;
        }
        if (uids is null || eff is null) return null;
        var u = uids.Split(['\t', ' '], StringSplitOptions.RemoveEmptyEntries);
        bool sysNice = (Guest(Convert.ToUInt64(eff, 16)) & 1UL << LinuxFlags.CAP_SYS_NICE) != 0;
        return new TaskCreds(vtid, uint.Parse(u[0], System.Globalization.CultureInfo.InvariantCulture),
            uint.Parse(u[1], System.Globalization.CultureInfo.InvariantCulture), sysNice, nice, rtprio);
    }

    /// <summary>A line of /proc/TID/limits ("Max nice priority   0   0", the limit's name padded to 26 columns): its soft limit, long.MaxValue for "unlimited".</summary>
    private static long SoftLimit(string line)
    {
        var words = line[Math.Min(line.Length, 26)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return words.Length > 0 && long.TryParse(words[0], System.Globalization.CultureInfo.InvariantCulture, out long v) ? v : long.MaxValue;
    }

    private static string? Field(int tid, string name)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{tid}/status"))
                if (line.StartsWith(name, StringComparison.Ordinal)) return line[name.Length..].Trim();
        }
        catch (IOException)
        {
        }
        return null;
    }
}
