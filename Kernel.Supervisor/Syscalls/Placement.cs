using UmlMicro.Contracts.Servers;
using UmlMicro.Supervisor.Servers;

namespace UmlMicro.Supervisor.Syscalls;

/// <summary>
/// Where mmap(NULL, ...) goes: the MM server decides, the supervisor applies it without a round trip per call. MM
/// grants each process a window (mm/window): the highest free range below the space's mmap base, up to 1 GiB. The
/// supervisor places calls in it top-down, first fit, as Linux's unmapped_area_topdown does, and hands the host
/// the address with MAP_FIXED_NOREPLACE; the call's record (mm/record, its Result) tells MM what was placed.
/// munmap and mremap give room in the window back, MAP_FIXED, mremap and shmat results take it. When the window
/// cannot hold a call, MM is asked for the next one (a round trip per 1 GiB of placements, not per call).
/// <para>
/// The host may have mapped something in the window that the supervisor did not see coming (a mapping the host
/// placed itself, by another sharer of the space); then MAP_FIXED_NOREPLACE fails with EEXIST. Any failure of a
/// placed call is answered by re-issuing the guest's own call, unchanged, which the host then places and judges
/// itself (so the guest's errno is always the host's), and the window is dropped for a fresh one.
/// </para>
/// </summary>
internal sealed class Placement(ServerLink<IMmServer> mm)
{
    private const ulong Page = 4096, HugePage = 2UL << 20, MaxLength = 1UL << 46;

    private sealed class Window(ulong start, ulong end)
    {
        public ulong Start { get; } = start;
        public ulong End { get; } = end;

        /// <summary>Free ranges by start, with their ends.</summary>
        public SortedList<ulong, ulong> Free { get; } = new() { [start] = end };
    }

    private readonly Lock _gate = new();
    private readonly Dictionary<int, Window> _windows = new();
    private readonly HashSet<int> _passNext = new();

    /// <summary>
    /// The address for an mmap(NULL, <paramref name="length"/>) of process <paramref name="vpid"/>, taken from its
    /// window; null when the host is to place it (nothing fits, or the task's last placement failed and this is its
    /// re-issued call). Large anonymous memory is aligned to 2 MiB, as Linux aligns it for transparent huge pages.
    /// </summary>
    public ulong? Place(int vpid, int hostTid, ulong length, bool anonymous)
    {
        if (length == 0 || length > MaxLength) return null;
        length = (length + Page - 1) & ~(Page - 1);
        ulong align = anonymous && length % HugePage == 0 ? HugePage : Page;
        lock (_gate)
        {
            if (_passNext.Remove(hostTid)) return null;
            if (_windows.TryGetValue(vpid, out var window) && Fit(window, length, align) is ulong at) return at;
            var granted = mm.Call(m => m.WindowAsync(new WindowRequest(vpid, length, align)));
            if (granted.End <= granted.Start)
            {
                _windows.Remove(vpid);
                return null;
            }
            window = new Window(granted.Start, granted.End);
            _windows[vpid] = window;
            return Fit(window, length, align);
        }
    }

    /// <summary>MM granted process <paramref name="vpid"/> a window unasked (with its exec): its calls are placed there.</summary>
    public void Granted(int vpid, PlacementWindow window)
    {
        lock (_gate)
        {
            if (window.End > window.Start) _windows[vpid] = new Window(window.Start, window.End);
            else _windows.Remove(vpid);
        }
    }

    /// <summary>
    /// A placed call failed: the task re-issues the guest's own call, which the host places; the window goes, since
    /// it may hold what the host mapped there.
    /// </summary>
    public void Refused(int vpid, int hostTid)
    {
        lock (_gate)
        {
            _windows.Remove(vpid);
            _passNext.Add(hostTid);
        }
    }

    /// <summary>[start, start+length) was unmapped: what of it lies in the window is free again.</summary>
    public void Released(int vpid, ulong start, ulong length)
    {
        lock (_gate)
        {
            if (!_windows.TryGetValue(vpid, out var w)) return;
            ulong end = Math.Min(start + ((length + Page - 1) & ~(Page - 1)), w.End);
            start = Math.Max(start, w.Start);
            if (start >= end) return;
            Take(w, start, end); // no overlapping entries: what was free already is merged below
            var free = w.Free;
            free[start] = end;
            int i = free.IndexOfKey(start);
            // Coalesce with the neighbours, so that a large call finds the room again.
            if (i + 1 < free.Count && free.Keys[i + 1] == end)
            {
                free.SetValueAtIndex(i, free.Values[i + 1]);
                free.RemoveAt(i + 1);
            }
            if (i > 0 && free.Values[i - 1] == start)
            {
                free.SetValueAtIndex(i - 1, free.Values[i]);
                free.RemoveAt(i);
            }
        }
    }

    /// <summary>[start, start+length) was mapped by a call the supervisor did not place (MAP_FIXED, mremap, shmat).</summary>
    public void Taken(int vpid, ulong start, ulong length)
    {
        lock (_gate)
        {
            if (_windows.TryGetValue(vpid, out var w))
                Take(w, start, start + ((length + Page - 1) & ~(Page - 1)));
        }
    }

    /// <summary>The process exec'd or exited: its window went with its space.</summary>
    public void Forget(int vpid)
    {
        lock (_gate)
            _windows.Remove(vpid);
    }

    /// <summary>Top-down first fit: the highest free range that holds the call, its top part.</summary>
    private static ulong? Fit(Window w, ulong length, ulong align)
    {
        var free = w.Free;
        for (int i = free.Count - 1; i >= 0; i--)
        {
            ulong start = free.Keys[i], end = free.Values[i];
            if (end - start < length) continue;
            ulong at = (end - length) & ~(align - 1);
            if (at < start) continue;
            Take(w, at, at + length);
            return at;
        }
        return null;
    }

    /// <summary>Removes [start, end) from the free ranges, splitting the ones it cuts.</summary>
    private static void Take(Window w, ulong start, ulong end)
    {
        var free = w.Free;
        for (int i = free.Count - 1; i >= 0; i--)
        {
            ulong s = free.Keys[i], e = free.Values[i];
            if (e <= start || s >= end) continue;
            free.RemoveAt(i);
            if (s < start) free[s] = start;
            if (e > end) free[end] = e;
        }
    }
}
