using UmlMicro.Contracts.Servers;

namespace UmlMicro.Supervisor.Syscalls;

/// <summary>What the host's /proc/TID/status says about a guest task: its credentials as the host enforces them.</summary>
internal static class HostStatus
{
    /// <summary>Capability <paramref name="cap"/> is in the task's effective set.</summary>
    public static bool HasCapability(int tid, int cap) =>
        Field(tid, "CapEff:") is { } hex && (Convert.ToUInt64(hex, 16) & (1UL << cap)) != 0;

    /// <summary>The task has no_new_privs set.</summary>
    public static bool NoNewPrivs(int tid) => Field(tid, "NoNewPrivs:") == "1";

    /// <summary>The task's real uid (what PRIO_USER and IOPRIO_WHO_USER match), or null when it is gone.</summary>
    public static uint? RealUid(int tid) =>
        Field(tid, "Uid:") is { } uids && uint.TryParse(uids.Split('\t', ' ')[0], out var uid) ? uid : null;

    /// <summary>The task's id in its innermost pid namespace (the last NSpid field: what the guest's own calls see),
    /// or null when it is gone.</summary>
    public static int? NsPid(int tid) =>
        Field(tid, "NSpid:") is { } ids && int.TryParse(ids.Split('\t', ' ')[^1], out int pid) ? pid : null;

    /// <summary>
    /// The task's credentials as the host checks files against them: fsuid, fsgid (the last of the Uid: and Gid: fields),
    /// the supplementary groups and the effective capabilities; null when it is gone. The ids read here are the ones the
    /// guest's user namespace maps to the host's (every id to itself for a run by root; the user's own otherwise).
    /// </summary>
    public static Credentials? Credentials(int tid)
    {
        string? uids = null, gids = null, groups = null, caps = null;
        try
        {
            foreach (var line in File.ReadLines($"/proc/{tid}/status"))
            {
                if (line.StartsWith("Uid:", StringComparison.Ordinal)) uids = line[4..];
                else if (line.StartsWith("Gid:", StringComparison.Ordinal)) gids = line[4..];
                else if (line.StartsWith("Groups:", StringComparison.Ordinal)) groups = line[7..];
                else if (line.StartsWith("CapEff:", StringComparison.Ordinal))
                {
                    caps = line[7..];
                    break; // after the ids in the file
                }
            }
        }
        catch (IOException)
        {
            return null;
        }
        if (uids is null || gids is null || groups is null || caps is null) return null;
        static uint Last(string ids) => uint.Parse(ids.Split(['\t', ' '], StringSplitOptions.RemoveEmptyEntries)[^1], System.Globalization.CultureInfo.InvariantCulture);
        var list = groups.Split(['\t', ' '], StringSplitOptions.RemoveEmptyEntries)
            .Select(g => uint.Parse(g, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        return new Credentials(Last(uids), Last(gids), list, Convert.ToUInt64(caps.Trim(), 16));
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
