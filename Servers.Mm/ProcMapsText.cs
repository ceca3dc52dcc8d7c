using System.Globalization;
using System.Text;
using UmlMicro.Contracts.Linux;
using UmlMicro.Contracts.Servers;

namespace UmlMicro.Servers.Mm;

/// <summary>
/// /proc/PID/maps and /proc/PID/smaps_rollup made from a process's space, in Linux's format (fs/proc/task_mmu.c,
/// show_map_vma): "start-end perms offset major:minor inode", the name padded to column 73. A mapped file's name is
/// the host's path, its line listed for the VFS, which shows the guest's path of that file (names are the VFS's).
/// </summary>
internal static class ProcMapsText
{
    // seq_setwidth(m, 25 + sizeof(void *) * 6 - 1): the name is padded to this column, then one more space.
    private const int NameColumn = 25 + 8 * 6 - 1;

    /// <summary>The text of <see cref="ProcTextRequest.File"/> for a space with these areas (none: a zombie's).</summary>
    public static ProcText Render(ProcTextRequest request, IReadOnlyList<Vma> areas) => request.File switch
    {
        "maps" => Maps(areas),
        "smaps_rollup" => new ProcText(Rollup(areas, request.HostText)),
        _ => new ProcText("", Errno: Errno.ENOENT),
    };

    /// <summary>
    /// The map as Linux prints it. The device and inode are the host file's: the guest's files are the host's files,
    /// so those are the numbers a native program would see for the same file (fstat in the guest gives the same ones).
    /// </summary>
    public static ProcText Maps(IReadOnlyList<Vma> areas)
    {
        var sb = new StringBuilder(areas.Count * 100);
        var files = new List<MappedFile>();
        for (int i = 0; i < areas.Count; i++)
        {
            var v = areas[i];
            if (v.Name is { } name && name.StartsWith('/')) files.Add(new MappedFile(i, v.DevMajor, v.DevMinor, v.Inode));
            Line(sb, v, v.Name);
        }
        return new ProcText(sb.ToString(), files);
    }

    /// <summary>
    /// smaps_rollup: Linux's header line covers the process's mappings from the first to the last (the [vsyscall]
    /// page is not a mapping of the process, so it is left out, as Linux leaves it out); the page counters (Rss, Pss,
    /// Anonymous, ...) only the host can count, so they are the host's for the same process, line by line.
    /// </summary>
    public static string Rollup(IReadOnlyList<Vma> areas, string hostRollup)
    {
        var own = areas.Where(v => v.Name != "[vsyscall]").ToList();
        if (own.Count == 0) return "";
        var sb = new StringBuilder();
        Line(sb, new Vma(own[0].Start, own[^1].End, 0, false, 0, null), "[rollup]");
        int firstLine = hostRollup.IndexOf('\n');
        if (firstLine >= 0) sb.Append(hostRollup, firstLine + 1, hostRollup.Length - firstLine - 1);
        return sb.ToString();
    }

    private static void Line(StringBuilder sb, Vma v, string? name)
    {
        int start = sb.Length;
        sb.Append(v.Start.ToString("x8", CultureInfo.InvariantCulture)).Append('-').Append(v.End.ToString("x8", CultureInfo.InvariantCulture))
            .Append(' ').Append((v.Prot & 1) != 0 ? 'r' : '-').Append((v.Prot & 2) != 0 ? 'w' : '-').Append((v.Prot & 4) != 0 ? 'x' : '-')
            .Append(v.Shared ? 's' : 'p').Append(' ').Append(v.Offset.ToString("x8", CultureInfo.InvariantCulture)).Append(' ')
            .Append(v.DevMajor.ToString("x2", CultureInfo.InvariantCulture)).Append(':').Append(v.DevMinor.ToString("x2", CultureInfo.InvariantCulture))
            .Append(' ').Append(v.Inode.ToString(CultureInfo.InvariantCulture)).Append(' ');
        if (name is not null)
        {
            int width = sb.Length - start;
            if (width < NameColumn) sb.Append(' ', NameColumn - width);
            sb.Append(' ').Append(name);
        }
        sb.Append('\n');
    }
}
