using System.Globalization;
using UmlMicro.Contracts.Servers;

namespace UmlMicro.Supervisor.Guest;

/// <summary>
/// A guest process's mappings as the host kernel shows them in /proc/HOSTPID/maps: what execve mapped (the MM
/// server's map starts from it) and the reference the MM map is checked against.
/// </summary>
internal static class HostMaps
{
    private const int PROT_READ = 1, PROT_WRITE = 2, PROT_EXEC = 4;

    /// <summary>The mappings of host process <paramref name="hostPid"/>; empty when it is gone.</summary>
    public static IReadOnlyList<Vma> Read(int hostPid)
    {
        string text;
        try
        {
            // Names are host paths, bytes: decoded as every path is (PathBytes), not as UTF-8.
            text = UmlMicro.Contracts.Linux.PathBytes.Decode(File.ReadAllBytes($"/proc/{hostPid}/maps"));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
        return Parse(text);
    }

    /// <summary>
    /// The length of the System V segment attached at <paramref name="start"/>: the areas from there on that carry
    /// the segment's name (mprotect may have split it); 0 when nothing is mapped there.
    /// </summary>
    public static ulong SegmentLength(IReadOnlyList<Vma> maps, ulong start)
    {
        int i = 0;
        while (i < maps.Count && maps[i].Start != start) i++;
        if (i == maps.Count) return 0;
        ulong end = maps[i].End;
        for (int j = i + 1; j < maps.Count && maps[j].Start == end && maps[j].Name == maps[i].Name; j++) end = maps[j].End;
        return end - start;
    }

    /// <summary>What the area starting at <paramref name="start"/> maps, as the host names it; null when nothing
    /// named is mapped there.</summary>
    public static MmBacking? BackingAt(IReadOnlyList<Vma> maps, ulong start) =>
        maps.FirstOrDefault(v => v.Start == start) is { Name: { } name } v && !name.StartsWith('[')
            ? new MmBacking(name, v.DevMajor, v.DevMinor, v.Inode)
            : null;

    /// <summary>
    /// Parses maps lines: "start-end perms offset dev inode [name]". A name is a path or a bracketed name
    /// ([stack], [vdso], [heap]); an unnamed line is anonymous memory. " (deleted)" stays part of the name.
    /// </summary>
    public static IReadOnlyList<Vma> Parse(string text)
    {
        var maps = new List<Vma>();
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var fields = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 5) throw new FormatException($"not a maps line: '{line}'");
            var range = fields[0].Split('-');
            string perms = fields[1];
            int prot = (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0) | (perms[2] == 'x' ? PROT_EXEC : 0);
            string? name = fields.Length == 6 ? fields[5].Trim() : null;
            var dev = fields[3].Split(':');
            maps.Add(new Vma(
                ulong.Parse(range[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture),
                ulong.Parse(range[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture),
                prot, Shared: perms[3] == 's',
                long.Parse(fields[2], NumberStyles.HexNumber, CultureInfo.InvariantCulture),
                string.IsNullOrEmpty(name) ? null : name,
                int.Parse(dev[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture),
                int.Parse(dev[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture),
                ulong.Parse(fields[4], NumberStyles.None, CultureInfo.InvariantCulture)));
        }
        return maps;
    }
}
