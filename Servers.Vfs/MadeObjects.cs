using System.Globalization;

namespace UmlMicro.Servers.Vfs;

/// <summary>
/// Host objects the VFS makes in its state directory and hands to the host (snapshot directories, links). Each gets
/// a fresh number, and the guest path it stands for is written beside it (NAME.guest), so that a restarted VFS knows
/// again every object the guest may still hold (an open directory, a cwd, a running program's path) and never
/// reuses a number.
/// </summary>
internal sealed class MadeObjects
{
    private const string GuestSuffix = ".guest";
    private readonly string _dir;
    private long _next;

    public MadeObjects(string dir)
    {
        _dir = Directory.CreateDirectory(dir).FullName;
    }

    /// <summary>A fresh host path, not yet made, standing for <paramref name="guestPath"/> (null: for nothing in particular).</summary>
    public string New(string prefix, string? guestPath)
    {
        string host = Path.Combine(_dir, prefix + (++_next).ToString(CultureInfo.InvariantCulture));
        if (guestPath is not null) File.WriteAllText(host + GuestSuffix, guestPath);
        return host;
    }

    /// <summary>What an earlier server made here, with the guest path each stands for (null when none was written);
    /// new numbers start after all of them.</summary>
    public List<(string Host, string? Guest)> Recall()
    {
        var found = new List<(string, string?)>();
        foreach (var path in Directory.EnumerateFileSystemEntries(_dir))
        {
            string name = Path.GetFileName(path);
            if (name.EndsWith(GuestSuffix, StringComparison.Ordinal)) continue;
            if (long.TryParse(name[name.TakeWhile(char.IsLetter).Count()..], NumberStyles.None, CultureInfo.InvariantCulture, out long n)) _next = Math.Max(_next, n);
            string sidecar = path + GuestSuffix;
            found.Add((path, File.Exists(sidecar) ? File.ReadAllText(sidecar) : null));
        }
        return found;
    }
}
