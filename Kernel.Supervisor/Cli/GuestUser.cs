using System.Globalization;

namespace UmlMicro.Supervisor.Cli;

/// <summary>
/// The user guest pid 1 starts as (<c>--user</c>, an image's <c>User</c>): ids, supplementary groups and home, looked up
/// in the guest's own <c>/etc/passwd</c> and <c>/etc/group</c>, as <c>login</c> or a container runtime would in the booted
/// system. A number need not be in the files: its group is then 0 and it has no other groups, as Docker has it.
/// </summary>
public sealed record GuestUser(uint Uid, uint Gid, IReadOnlyList<uint> Groups, string Home)
{
    /// <summary>The launcher's fixed room for supplementary groups.</summary>
    public const int MaxGroups = 256;

    /// <summary><paramref name="spec"/> (USER[:GROUP], each a name or a number) in the tree at <paramref name="root"/>.</summary>
    public static GuestUser Resolve(string spec, string root)
    {
        var parts = spec.Split(':');
        if (parts.Length > 2 || parts[0].Length == 0 || (parts.Length == 2 && parts[1].Length == 0))
            throw new UsageError($"--user wants USER[:GROUP], not '{spec}'");
        var passwd = Entries(root, "etc/passwd");
        var groups = Entries(root, "etc/group");

        string[]? account = IsNumber(parts[0], out uint uid)
            ? passwd.FirstOrDefault(f => f.Length >= 7 && f[2] == parts[0])
            : passwd.FirstOrDefault(f => f.Length >= 7 && f[0] == parts[0])
              ?? throw new UsageError($"--user: no user '{parts[0]}' in the guest's /etc/passwd");
        if (account is not null && !IsNumber(account[2], out uid))
            throw new UsageError($"--user: the guest's /etc/passwd gives '{parts[0]}' no numeric uid");
        uint gid = account is not null && IsNumber(account[3], out var primary) ? primary : 0;
        if (parts.Length == 2)
            gid = IsNumber(parts[1], out var g) ? g
                : groups.FirstOrDefault(f => f.Length >= 3 && f[0] == parts[1]) is { } entry && IsNumber(entry[2], out g) ? g
                : throw new UsageError($"--user: no group '{parts[1]}' in the guest's /etc/group");

        var member = new List<uint> { gid };
        if (account is not null)
            foreach (var f in groups)
                if (f.Length >= 4 && f[3].Split(',').Contains(account[0]) && IsNumber(f[2], out var g) && !member.Contains(g))
                    member.Add(g);
        if (member.Count > MaxGroups) member = member[..MaxGroups];
        string home = account is not null && account[5].StartsWith('/') ? account[5] : "/";
        return new GuestUser(uid, gid, member, home);
    }

    /// <summary>The fields of each line of a colon-separated account file of the guest's tree; none when it has no such file.
    /// A symlink on the way is not followed: read on the host, it could name a host file (the guest's own /etc/passwd never
    /// is one in a booted system).</summary>
    private static List<string[]> Entries(string root, string file)
    {
        string path = Path.Combine(root, file);
        try
        {
            if (new DirectoryInfo(Path.GetDirectoryName(path)!).LinkTarget is not null || new FileInfo(path).LinkTarget is not null) return [];
            return File.ReadLines(path).Where(l => l.Length > 0 && l[0] != '#').Select(l => l.Split(':')).ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    private static bool IsNumber(string s, out uint n) => uint.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out n);
}
