using System.Globalization;
using UmlMicro.Contracts.Servers;

namespace UmlMicro.Supervisor.Syscalls;

/// <summary>
/// The System V segments the guest made, so that each is committed once, from its shmget to its destruction, as Linux
/// charges a segment (newseg's shmem_acct_size) and releases it when the last attachment of a removed segment goes.
/// The host keeps the segments (its IPC namespace); the kernel learns of them from the host's /proc/sysvipc/shm:
/// after shmget (was the id made by this call? its creator is this process and the kernel did not know it), and to
/// find the ones that are gone — after IPC_RMID and shmdt, and before a call is refused for lack of room, since a
/// removed segment also goes when its last attacher exits or execs, without a call the kernel sees.
/// </summary>
internal sealed class SysvShm
{
    private readonly Lock _gate = new();
    private readonly HashSet<long> _known = [];

    /// <summary>A segment as /proc/sysvipc/shm shows it.</summary>
    public readonly record struct Segment(long Key, long Id, ulong Size, int CreatorPid);

    /// <summary>Whether the kernel already charged segment <paramref name="shmid"/>.</summary>
    public bool Knows(long shmid)
    {
        lock (_gate) return _known.Contains(shmid);
    }

    public void Made(long shmid)
    {
        lock (_gate) _known.Add(shmid);
    }

    /// <summary>The host made a new segment <paramref name="shmid"/>: a known segment with that id was destroyed before
    /// (unseen: its last attacher exited), so it is released now.</summary>
    public void Reused(Kernel kernel, int vpid, long shmid)
    {
        lock (_gate)
            if (_known.Remove(shmid))
                kernel.Mm.Post(nameof(IMmServer.RecordAsync), new MmEvent(vpid, MmOp.ShmDestroy, (ulong)shmid, 0, 0, 0, 0, -1, 0, 0));
    }

    // Calls since the last sweep after which a segment may have gone (IPC_RMID, shmdt).
    private int _unswept;

    /// <summary>
    /// A segment may have gone (removed, or detached for the last time). A sweep reads the host's whole table, so it
    /// is made once the calls since the last one reach a sixteenth of the known segments: at once while there are
    /// few, and a constant cost per call however many there are (removing 4,096 segments one by one read the table
    /// 4,096 times). A charge that does not fit sweeps first anyway (<see cref="Sweep"/>), so the limit never refuses
    /// memory that a sweep would have given back.
    /// </summary>
    public void MayBeGone(Kernel kernel, int vpid)
    {
        lock (_gate)
        {
            if (++_unswept * 16 < _known.Count) return;
        }
        Sweep(kernel, vpid);
    }

    /// <summary>
    /// Tells MM of every known segment the host no longer has (as process <paramref name="vpid"/>'s records); true
    /// when there was one, so that a charge refused before may now fit.
    /// </summary>
    public bool Sweep(Kernel kernel, int vpid)
    {
        lock (_gate)
        {
            _unswept = 0;
            if (_known.Count == 0) return false;
            var live = Read().Select(s => s.Id).ToHashSet();
            var gone = _known.Where(id => !live.Contains(id)).ToList();
            foreach (long id in gone)
            {
                _known.Remove(id);
                kernel.Mm.Post(nameof(IMmServer.RecordAsync), new MmEvent(vpid, MmOp.ShmDestroy, (ulong)id, 0, 0, 0, 0, -1, 0, 0));
            }
            return gone.Count > 0;
        }
    }

    /// <summary>
    /// /proc/sysvipc/shm opened in the guest's IPC namespace (a reader keeps the namespace it was opened in), which the
    /// launcher left for the supervisor; null: the supervisor's own, when the guest shares it.
    /// </summary>
    public Microsoft.Win32.SafeHandles.SafeFileHandle? Source { get; set; }

    /// <summary>The guest's segments; none when the host shows none.</summary>
    public IReadOnlyList<Segment> Read()
    {
        try
        {
            return Parse(Source is { } source ? Native.Interop.ReadWhole(source) : File.ReadAllText("/proc/sysvipc/shm"));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    /// <summary>Parses /proc/sysvipc/shm: a header line naming the columns, then one line per segment.</summary>
    public static IReadOnlyList<Segment> Parse(string text)
    {
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        if (lines.Length == 0) return [];
        var columns = lines[0].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        int key = Array.IndexOf(columns, "key"), id = Array.IndexOf(columns, "shmid"), size = Array.IndexOf(columns, "size"), cpid = Array.IndexOf(columns, "cpid");
        if (key < 0 || id < 0 || size < 0 || cpid < 0) return [];
        var segments = new List<Segment>();
        foreach (var line in lines.Skip(1))
        {
            var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f.Length <= Math.Max(Math.Max(key, id), Math.Max(size, cpid))) continue;
            segments.Add(new Segment(long.Parse(f[key], CultureInfo.InvariantCulture), long.Parse(f[id], CultureInfo.InvariantCulture),
                ulong.Parse(f[size], CultureInfo.InvariantCulture), int.Parse(f[cpid], CultureInfo.InvariantCulture)));
        }
        return segments;
    }
}
