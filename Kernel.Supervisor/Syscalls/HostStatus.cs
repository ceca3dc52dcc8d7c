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
