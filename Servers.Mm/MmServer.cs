using System.Text.Json;
using System.Text.Json.Serialization;
using UmlMicro.Contracts.Servers;

namespace UmlMicro.Servers.Mm;

/// <summary>
/// The memory-management server: one <see cref="VmaMap"/> per address space, kept from the memory calls the host
/// carried out, and the guest's commit limit. The mapping itself is done by the host kernel; this server knows
/// what is mapped, and decides whether a call may commit more memory before the host runs it.
/// <para>
/// The limit: committed memory is what Linux accounts (Committed_AS): private writable mappings, the heap, the
/// stack, shared anonymous memory, all over every address space of the guest, each space counted once however
/// many processes share it, and System V segments, each from its shmget to its destruction. The supervisor holds a budget granted by <see cref="ReserveAsync"/> and spends it on
/// calls without asking; a grant counts as committed until the calls it paid for are recorded
/// (<see cref="MmEvent.Charged"/>), so committed + granted never passes the limit by a call that was asked
/// about. fork's copy of private memory is asked about at fork's entry (MmOp.Fork: its charge is the copy's committed
/// memory) and refused like any call that would pass the limit.
/// </para>
/// <para>
/// Rebuilding after a crash: the server keeps no journal. Its state is a function of the messages the supervisor
/// sent, in their order: mm/configure, then every mm/space_exec (with the image the host showed), mm/space_created,
/// mm/record, mm/reserve, mm/window and mm/space_exited (mm/brk, mm/maps and mm/usage are queries). The layout's
/// randomness — the mmap base and the heap's start of each space — is drawn from the seed mm/configure carries and
/// the mm/space_exec message, so replayed windows and heaps are the ones chosen before. The supervisor may leave out
/// the history of a space that no live pid refers to any more, but must keep the rest in order, and every System V
/// segment's records (MmOp.Shmget, MmOp.ShmDestroy), which belong to no space: a segment outlives its maker. Instead of replaying
/// mm/reserve it may reserve its unspent budget again. A space whose history is lost can be rebuilt from the host's
/// /proc/HOSTPID/maps, the way mm/space_exec seeds one: exact for the map, except that the heap's start, the break
/// within its last page (the host knows neither: brk is the kernel's, see BrkAsync) and which areas were made with
/// MAP_NORESERVE are not shown there.
/// </para>
/// </summary>
internal sealed partial class MmServer() : KernelServerBase(Contract.MmName, Contract.MmVersion), IMmServer
{
    private const long ENOMEM = 12;

    // Requests are serialised: the server is a single-threaded kernel, one message at a time, as in MINIX.
    private readonly Lock gate = new();
    private readonly Dictionary<int, AddressSpace> spaces = new();
    private readonly SortedDictionary<int, ProcessPeaks> peaks = new();
    private long memoryLimitBytes;
    private bool deterministicLayout;
    private ulong layoutSeed;
    private ulong committed, peakCommitted;
    // Budget the supervisor holds and has not spent yet: counted against the limit like committed memory.
    private ulong granted;
    // System V segments by id, with what each commits: charged at shmget, released when the segment is destroyed.
    private readonly SortedDictionary<long, ulong> segments = new();

    private sealed class ProcessPeaks
    {
        public ulong Mapped { get; set; }
        public ulong Committed { get; set; }
    }

    /// <summary>A checkpoint: the totals, each space once with the pids that share it, and every process's peaks.</summary>
    private sealed record Checkpoint(long Limit, ulong Committed, ulong PeakCommitted, ulong Granted,
        IReadOnlyList<SharedSpace> Spaces, SortedDictionary<int, ProcessPeaks> Peaks,
        bool DeterministicLayout = false, ulong LayoutSeed = 0, SortedDictionary<long, ulong>? Segments = null);

    private sealed record SharedSpace(IReadOnlyList<int> Vpids, AddressSpace.Saved Space);

    /// <summary>A checkpoint's JSON, generated at compile time (the server is a NativeAOT executable).</summary>
    [JsonSerializable(typeof(Checkpoint))]
    private sealed partial class CheckpointJson : JsonSerializerContext;

    public override Task<string?> CheckpointAsync()
    {
        lock (gate)
        {
            var shared = spaces.GroupBy(kv => kv.Value, ReferenceEqualityComparer.Instance)
                .Select(g => new SharedSpace([.. g.Select(kv => kv.Key).Order()], ((AddressSpace)g.Key!).Save())).ToList();
            return Task.FromResult<string?>(JsonSerializer.Serialize(new Checkpoint(memoryLimitBytes, committed, peakCommitted, granted, shared, peaks, deterministicLayout, layoutSeed, segments), CheckpointJson.Default.Checkpoint));
        }
    }

    public override Task RestoreAsync(string checkpoint)
    {
        lock (gate)
        {
            if (spaces.Count > 0 || peaks.Count > 0 || segments.Count > 0) throw ProtocolViolation.Of("a checkpoint is restored into a fresh server only");
            var saved = ReadCheckpoint(checkpoint, CheckpointJson.Default.Checkpoint);
            try
            {
                foreach (var s in saved.Spaces ?? [])
                {
                    var space = AddressSpace.Load(s.Space ?? throw new ArgumentException("a space without its map"));
                    foreach (int vpid in s.Vpids ?? []) spaces.Add(vpid, space);
                }
                foreach (var (vpid, p) in saved.Peaks ?? []) peaks.Add(vpid, p);
                foreach (var (shmid, charge) in saved.Segments ?? []) segments.Add(shmid, charge);
                (memoryLimitBytes, committed, peakCommitted, granted) = (saved.Limit, saved.Committed, saved.PeakCommitted, saved.Granted);
                (deterministicLayout, layoutSeed) = (saved.DeterministicLayout, saved.LayoutSeed);
            }
            catch (ArgumentException e)
            {
                spaces.Clear();
                peaks.Clear();
                segments.Clear();
                throw NotACheckpoint(e.Message);
            }
        }
        return Task.CompletedTask;
    }

    /// <summary>The configured limit; 0 means none.</summary>
    public long MemoryLimitBytes
    {
        get
        {
            lock (gate)
                return memoryLimitBytes;
        }
    }

    public Task ConfigureAsync(MmConfig config)
    {
        if (config.MemoryLimitBytes < 0)
            throw ProtocolViolation.Of($"a memory limit cannot be negative ({config.MemoryLimitBytes})");
        lock (gate)
        {
            memoryLimitBytes = config.MemoryLimitBytes;
            deterministicLayout = config.DeterministicLayout;
            layoutSeed = config.LayoutSeed;
        }
        return Task.CompletedTask;
    }

    public Task SpaceCreatedAsync(int parentVpid, int childVpid, bool shared)
    {
        lock (gate)
        {
            var parent = Space(parentVpid);
            if (spaces.ContainsKey(childVpid))
                throw ProtocolViolation.Of($"process {childVpid} already has an address space");
            if (shared)
            {
                parent.Users++;
                spaces.Add(childVpid, parent);
            }
            else
            {
                var child = parent.Fork();
                spaces.Add(childVpid, child);
                Commit(0, child.Vmas.Committed);
            }
            Observe(childVpid);
        }
        return Task.CompletedTask;
    }

    /// <summary>A new space holding the image execve mapped; this is also how the first process gets one.</summary>
    public Task<SpaceGrant> SpaceExecAsync(int vpid, IReadOnlyList<Vma> image)
    {
        lock (gate)
        {
            AddressSpace fresh;
            try
            {
                fresh = deterministicLayout
                    ? AddressSpace.FromImage(image ?? [])
                    : AddressSpace.FromImage(image ?? [], Draw(vpid, image, 0) & 0xFFFF, Draw(vpid, image, 1) % AddressSpace.HeapRandomPages);
            }
            catch (Exception ex) when (ex is ArgumentException or OverflowException)
            {
                throw ProtocolViolation.Of($"the image of process {vpid} is not a map: {ex.Message}");
            }
            if (spaces.Remove(vpid, out var old))
            {
                old.DropWindow(vpid); // a vfork parent keeps the space, not the child's window
                Release(old);
            }
            spaces[vpid] = fresh;
            Commit(0, fresh.Vmas.Committed);
            Observe(vpid);
            var (start, end) = fresh.Window(vpid, VmaMap.PageSize, VmaMap.PageSize);
            return Task.FromResult(new SpaceGrant(fresh.PlanBrk(0).Current, new PlacementWindow(start, end)));
        }
    }

    /// <summary>The pid lets go of its space, which is gone once no pid refers to it.</summary>
    public Task SpaceExitedAsync(int vpid)
    {
        lock (gate)
        {
            if (!spaces.Remove(vpid, out var space))
                throw ProtocolViolation.Of($"process {vpid} has no address space");
            space.DropWindow(vpid);
            Release(space);
        }
        return Task.CompletedTask;
    }

    /// <summary>Replays a memory call; one that failed on the host (negative result) changed nothing.</summary>
    public Task RecordAsync(MmEvent e)
    {
        lock (gate)
        {
            var space = Space(e.Vpid);
            if (e.Charged < 0)
                throw ProtocolViolation.Of($"a call cannot be charged {e.Charged} bytes");
            // The budget spent on the call is no longer held: what the call really committed takes its place.
            granted -= Math.Min(granted, (ulong)e.Charged);
            // A madvise that met a hole (ENOMEM) still applied to the mapped part, as Linux's does.
            if (e.Result < 0 && e.Result >= -4095 && !(e.Op == MmOp.Madvise && e.Result == -ENOMEM))
                return Task.CompletedTask;
            if (e.Op is MmOp.Shmget or MmOp.ShmDestroy)
            {
                Segment(e);
                return Task.CompletedTask;
            }
            ulong before = space.Vmas.Committed;
            try
            {
                space.Apply(e);
            }
            catch (Exception ex) when (ex is ArgumentException or OverflowException)
            {
                throw ProtocolViolation.Of($"{e.Op} in process {e.Vpid} cannot have succeeded on the host: {ex.Message}");
            }
            Commit(before, space.Vmas.Committed);
            Observe(e.Vpid);
        }
        return Task.CompletedTask;
    }

    /// <summary>
    /// A System V segment was made (its charge joins the committed memory, as Linux's newseg charges it) or destroyed
    /// (removed and no longer attached: the charge goes, as when shmem releases the segment's file).
    /// </summary>
    private void Segment(MmEvent e)
    {
        if (e.Op == MmOp.Shmget)
        {
            if (!segments.TryAdd(e.Result, AddressSpace.SegmentCharge(e.Length, e.Flags)))
                throw ProtocolViolation.Of($"System V segment {e.Result} exists already");
            Commit(0, segments[e.Result]);
        }
        else
        {
            long shmid = (long)e.Addr;
            if (!segments.Remove(shmid, out ulong charge))
                throw ProtocolViolation.Of($"no System V segment {shmid} to destroy");
            Commit(charge, 0);
        }
    }

    /// <summary>
    /// The call is allowed when what it commits, beyond the budget the supervisor still holds, fits under the
    /// limit beside everything committed and granted; the grant adds up to the asked refill where it fits too.
    /// </summary>
    public Task<CommitReply> ReserveAsync(CommitRequest request)
    {
        if (request.Budget < 0 || request.Refill < 0)
            throw ProtocolViolation.Of($"a budget ({request.Budget}) or refill ({request.Refill}) cannot be negative");
        lock (gate)
        {
            ulong charge = Space(request.Call.Vpid).Charge(request.Call);
            ulong need = charge > (ulong)request.Budget ? charge - (ulong)request.Budget : 0;
            if (memoryLimitBytes == 0)
                return Task.FromResult(new CommitReply(true, (long)charge, (long)need));
            ulong used = committed + granted, limit = (ulong)memoryLimitBytes;
            ulong free = limit > used ? limit - used : 0;
            if (need > free)
                return Task.FromResult(new CommitReply(false, (long)charge, 0));
            ulong grant = need + Math.Min((ulong)request.Refill, free - need);
            granted += grant;
            return Task.FromResult(new CommitReply(true, (long)charge, (long)grant));
        }
    }

    public Task<PlacementWindow> WindowAsync(WindowRequest request)
    {
        if (request.Length == 0 || request.Align == 0 || (request.Align & (request.Align - 1)) != 0)
            throw ProtocolViolation.Of($"no window holds {request.Length} bytes aligned to {request.Align}");
        lock (gate)
        {
            var (start, end) = Space(request.Vpid).Window(request.Vpid, request.Length, request.Align);
            return Task.FromResult(new PlacementWindow(start, end));
        }
    }

    /// <summary>
    /// The randomness of the layout of a space exec'd by <paramref name="vpid"/>: draw 0 is how many pages its mmap
    /// base is lowered by (up to 2^16, 256 MiB), draw 1 how many its heap is raised by (up to 2^18, 1 GiB, as
    /// arch_randomize_brk). Drawn (splitmix64) from the configured seed and the exec message itself (the pid, where
    /// the host put the image), so that the same message replayed gives the same layout whatever history was left
    /// out before it.
    /// </summary>
    private ulong Draw(int vpid, IReadOnlyList<Vma>? image, ulong draw)
    {
        ulong z = layoutSeed + (ulong)vpid * 0x9E3779B97F4A7C15UL + (image is { Count: > 0 } ? image[^1].Start ^ image[0].Start : 0)
            + draw * 0xD1B54A32D192ED03UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public Task<BrkPlan> BrkAsync(BrkRequest request)
    {
        lock (gate)
        {
            try
            {
                return Task.FromResult(Space(request.Vpid).PlanBrk(request.Addr));
            }
            catch (OverflowException)
            {
                return Task.FromResult(Space(request.Vpid).PlanBrk(0)); // past any space: refused, the break stays
            }
        }
    }

    public Task<MmUsage> UsageAsync()
    {
        lock (gate)
        {
            IReadOnlyList<MmProcessStats> processes = [.. peaks.Select(p =>
            {
                var space = spaces.GetValueOrDefault(p.Key);
                return new MmProcessStats(p.Key, (long)(space?.Vmas.Mapped ?? 0), (long)p.Value.Mapped,
                    (long)(space?.Vmas.Committed ?? 0), (long)p.Value.Committed);
            })];
            return Task.FromResult(new MmUsage((long)committed, (long)peakCommitted, memoryLimitBytes, processes));
        }
    }

    /// <summary>The mappings of the process's space, in address order; none for a pid without one (a zombie's
    /// /proc/PID/maps is empty on Linux: its mm is gone before it is reaped).</summary>
    public Task<IReadOnlyList<Vma>> MapsAsync(int vpid)
    {
        lock (gate)
            return Task.FromResult(Areas(vpid));
    }

    private IReadOnlyList<Vma> Areas(int vpid) => spaces.TryGetValue(vpid, out var space) ? [.. space.Vmas.Areas.Select(a => a.ToVma())] : [];

    public Task<ProcText> ProcTextAsync(ProcTextRequest request)
    {
        if (request?.File is null || request.HostText is null) throw ProtocolViolation.Of("a procfs text request names its file and carries the host's text");
        lock (gate)
            return Task.FromResult(ProcMapsText.Render(request, Areas(request.Vpid)));
    }

    /// <summary>A space's committed memory went from <paramref name="before"/> to <paramref name="after"/>.</summary>
    private void Commit(ulong before, ulong after)
    {
        committed = committed - before + after;
        peakCommitted = Math.Max(peakCommitted, committed);
    }

    private void Release(AddressSpace space)
    {
        if (--space.Users == 0)
            Commit(space.Vmas.Committed, 0);
    }

    /// <summary>Keeps the peaks of the process's space, which may be shared: each sharer sees its size.</summary>
    private void Observe(int vpid)
    {
        var space = spaces[vpid];
        if (!peaks.TryGetValue(vpid, out var p))
            peaks.Add(vpid, p = new ProcessPeaks());
        p.Mapped = Math.Max(p.Mapped, space.Vmas.Mapped);
        p.Committed = Math.Max(p.Committed, space.Vmas.Committed);
    }

    private AddressSpace Space(int vpid) =>
        spaces.TryGetValue(vpid, out var space) ? space : throw ProtocolViolation.Of($"process {vpid} has no address space");
}
