using UmlMicro.Contracts.Servers;
using UmlMicro.Supervisor.Guest;

namespace UmlMicro.Supervisor.Observability;

/// <summary>
/// A debug check (Mm:CheckMaps): after every memory call the MM server's map of the process is compared with the
/// host's /proc/HOSTPID/maps, where the host kernel's view and the server's could drift. A difference is one line
/// on stderr; a summary line comes at exit. It costs a server round trip and a maps read per memory call.
/// <para>
/// What is compared: start, end, protection, sharing and file offset of every area, after merging neighbours
/// that Linux may or may not keep apart (same protection and sharing, continuing offsets). File names, devices and
/// inodes are not compared (the server's come from the fd at mmap time, and the host's name gains " (deleted)" when
/// the file is unlinked later; procfs checks that itself); [stack], [vdso] and the other bracketed names are, but not
/// [heap]: the heap is the kernel's (brk is emulated, SysMmap.Brk), so the host shows its pages as anonymous memory,
/// and names [heap] whatever area happens to hold its own break, which never moves. The start of [stack] is not
/// compared either, since the host grows it on a fault, without a call. The check is exact while no other thread of the process is between running a memory call on the host
/// and its exit stop.
/// </para>
/// </summary>
internal sealed class MapCheck
{
    private int _compared, _differed;

    public void Check(Kernel kernel, GuestTask task)
    {
        var server = kernel.Mm.Call(m => m.MapsAsync(task.Vpid));
        var host = HostMaps.Read(task.HostTgid);
        if (host.Count == 0) return; // the process is gone
        _compared++;
        if (Difference(server, host) is { } difference)
        {
            _differed++;
            Console.Error.WriteLine($"umlmicro: mm check: process {task.Vpid}: {difference}");
        }
    }

    public string Summary => $"umlmicro: mm check: {_compared} maps compared with the host's, {_differed} differed\n";

    /// <summary>The first difference between the two maps, or null when they agree.</summary>
    public static string? Difference(IReadOnlyList<Vma> server, IReadOnlyList<Vma> host)
    {
        var (s, h) = (Normalise(server), Normalise(host));
        for (int i = 0; i < Math.Max(s.Count, h.Count); i++)
        {
            var (a, b) = (i < s.Count ? s[i] : null, i < h.Count ? h[i] : null);
            if (a != b) return $"server has {Show(a)}, host has {Show(b)}";
        }
        return null;
    }

    private static List<Vma> Normalise(IReadOnlyList<Vma> maps)
    {
        var merged = new List<Vma>();
        foreach (var raw in maps)
        {
            var v = raw with
            {
                Name = raw.Name is { } n && n.StartsWith('[') && !n.StartsWith("[anon:", StringComparison.Ordinal) && n != "[heap]" ? n : null,
                DevMajor = 0, DevMinor = 0, Inode = 0,
            };
            if (merged.Count > 0 && merged[^1] is var last && last.End == v.Start && last.Prot == v.Prot && last.Shared == v.Shared
                && last.Name == v.Name && (v.Offset == last.Offset + (long)(last.End - last.Start) || (last.Offset == 0 && v.Offset == 0)))
                merged[^1] = last with { End = v.End };
            else
                merged.Add(v);
        }
        return [.. merged.Select(v => v.Name == "[stack]" ? v with { Start = 0 } : v)];
    }

    private static string Show(Vma? v) => v is null ? "nothing"
        : $"{v.Start:x}-{v.End:x} {((v.Prot & 1) != 0 ? 'r' : '-')}{((v.Prot & 2) != 0 ? 'w' : '-')}{((v.Prot & 4) != 0 ? 'x' : '-')}{(v.Shared ? 's' : 'p')} {v.Offset:x}{(v.Name is null ? "" : " " + v.Name)}";
}
