using UmlMicro.Supervisor.Cli;

namespace UmlMicro.Supervisor.Images;

/// <summary>Who the guest runs as, from an image's User.</summary>
internal readonly record struct GuestUser(uint Uid, uint Gid, string Home);

/// <summary>
/// Resolves an image config's User (<c>name</c>, <c>uid</c>, <c>name:group</c>, <c>uid:gid</c>, or empty for root)
/// against the image's own /etc/passwd and /etc/group, as container runtimes do: a numeric uid need not be listed
/// (its group is then 0 and its home /), a name must be.
/// </summary>
internal static class ImageUser
{
    /// <summary>Resolves <paramref name="spec"/> against the files of the unpacked root <paramref name="root"/>.</summary>
    public static GuestUser Resolve(string? spec, string root) => Resolve(spec, ReadEtc(root, "passwd"), ReadEtc(root, "group"));

    /// <summary>Resolves <paramref name="spec"/> against the text of a passwd and a group file (null: the image has none).</summary>
    public static GuestUser Resolve(string? spec, string? passwd, string? group)
    {
        string[] parts = (spec ?? "").Split(':', 2);
        string user = parts[0], groupPart = parts.Length > 1 ? parts[1] : "";
        var users = Entries(passwd);

        string[]? entry;
        uint uid = 0;
        if (user.Length == 0 || uint.TryParse(user, out uid))
        {
            entry = users.FirstOrDefault(e => e.Length >= 6 && uint.TryParse(e[2], out var u) && u == uid);
        }
        else
        {
            entry = users.FirstOrDefault(e => e.Length >= 6 && e[0] == user && uint.TryParse(e[2], out _))
                ?? throw new UsageError($"image user '{spec}': no user {user} in the image's /etc/passwd");
            uid = uint.Parse(entry[2]);
        }
        uint gid = entry is not null && uint.TryParse(entry[3], out var g) ? g : 0;
        string home = entry is { } e6 && e6[5].Length > 0 ? e6[5] : "/";

        if (groupPart.Length > 0 && !uint.TryParse(groupPart, out gid))
        {
            var groupEntry = Entries(group).FirstOrDefault(e => e.Length >= 3 && e[0] == groupPart && uint.TryParse(e[2], out _))
                ?? throw new UsageError($"image user '{spec}': no group {groupPart} in the image's /etc/group");
            gid = uint.Parse(groupEntry[2]);
        }
        return new GuestUser(uid, gid, home);
    }

    private static List<string[]> Entries(string? file) =>
        file is null ? [] : [.. file.Split('\n').Where(l => l.Length > 0 && !l.StartsWith('#')).Select(l => l.Split(':'))];

    /// <summary>etc/NAME of the root, or null when there is none or it is not a plain file: a symlink there could point out of the root.</summary>
    private static string? ReadEtc(string root, string name)
    {
        string etc = Path.Join(root, "etc"), file = Path.Join(etc, name);
        return Nodes.Kind(etc) == NodeKind.Directory && Nodes.Kind(file) == NodeKind.File ? File.ReadAllText(file) : null;
    }
}
