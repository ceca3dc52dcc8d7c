using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading.Tasks;
using StreamJsonRpc;

namespace UmlMicro.Contracts.Servers;

public enum MmOp
{
    Brk,
    Mmap,
    Munmap,
    Mprotect,
    Mremap,
    /// <summary>A System V shared memory segment attached at Result, Length bytes (shmat's result and the segment's size).</summary>
    Shmat,
    /// <summary>
    /// shmget made a new System V segment: Result is its id, Length its size, Flags shmget's flags. Committed once,
    /// as Linux charges it at creation (newseg), unless SHM_NORESERVE or SHM_HUGETLB; asked about at shmget's entry.
    /// Not tied to any space: a segment lives until it is destroyed, whoever attaches it.
    /// </summary>
    Shmget,
    /// <summary>The segment with id Addr is gone (removed with IPC_RMID and no longer attached): its charge is released.</summary>
    ShmDestroy,
    /// <summary>
    /// madvise with advice Flags over [Addr, Addr+Length): recorded for the advice that changes what fork does with an
    /// area (MADV_DONTFORK, MADV_DOFORK, MADV_WIPEONFORK, MADV_KEEPONFORK). A Result of -ENOMEM (part of the range
    /// unmapped) still applies to the mapped part, as Linux's madvise does.
    /// </summary>
    Madvise,
    /// <summary>
    /// fork's copy of the space (no CLONE_VM). Asked about at its entry under a limit (mm/reserve: the charge is the
    /// copy's committed memory, as dup_mmap charges it); its record only brings the charge back (Charged), the
    /// child's space itself comes with mm/space_created.
    /// </summary>
    Fork,
}

/// <summary>
/// The guest's limit on committed memory over all its processes, in bytes (0 means none), and the layout policy:
/// with <paramref name="DeterministicLayout"/> the mmap base of every space is fixed by what execve mapped; without
/// it the base is lowered by a random number of pages drawn from <paramref name="LayoutSeed"/>. The seed comes with
/// this message, which a restarted server is sent again, so replayed placements come out the same.
/// </summary>
public sealed record MmConfig(long MemoryLimitBytes, bool DeterministicLayout = false, ulong LayoutSeed = 0);

/// <summary>
/// Process <paramref name="Vpid"/> needs room for an mmap(NULL, <paramref name="Length"/>) placed at a multiple of
/// <paramref name="Align"/> (a page, or 2 MiB for large anonymous memory, as Linux aligns it for huge pages).
/// </summary>
public sealed record WindowRequest(int Vpid, ulong Length, ulong Align);

/// <summary>
/// A free range [<paramref name="Start"/>, <paramref name="End"/>) of the process's space, the highest below the
/// space's mmap base that fits the request: the supervisor places mmap(NULL, ...) calls in it, top-down, without
/// asking again, until it is used up. Start == End means there is no room: the host places the call.
/// </summary>
public sealed record PlacementWindow(ulong Start, ulong End);

/// <summary>
/// A memory call the host carried out in process <paramref name="Vpid"/>, with its arguments and the host's
/// result (negative errno on failure). For mremap <paramref name="NewLength"/> and <paramref name="Result"/> carry the new extent.
/// <paramref name="Charged"/> is what the supervisor took from its commit budget for the call at its entry
/// (see <see cref="IMmServer.ReserveAsync"/>); 0 when no limit is set or the kernel made the call itself.
/// <paramref name="Backing"/> names what a mapping maps when it is not private anonymous memory (the file behind an
/// fd, a shared anonymous object, a System V segment): the supervisor reads it from the host at the exit stop.
/// </summary>
public sealed record MmEvent(int Vpid, MmOp Op, ulong Addr, ulong Length, ulong NewLength, int Prot, int Flags, int Fd, long Offset, long Result,
    long Charged = 0, MmBacking? Backing = null);

/// <summary>
/// The object behind a mapping as /proc/PID/maps names it: <paramref name="Name"/> is the host's name (a host path,
/// "/memfd:x (deleted)", "/dev/zero (deleted)", "/SYSV00000000 (deleted)"; bytes, carried as every path is: see the
/// contract README, "Values"), the device and inode of the host's file.
/// The VFS turns a host path into the guest's path when it shows the map.
/// </summary>
public sealed record MmBacking(string Name, int DevMajor, int DevMinor, ulong Inode);

/// <summary>
/// One mapping of an address space, as /proc/PID/maps shows it. <paramref name="Name"/> is a host path for a file
/// mapping (bytes, carried as every path is; the VFS shows the guest's), a bracketed name ([heap], [stack], [vdso], [vvar]) or null for anonymous
/// memory; the device and inode are the host file's (0 for anonymous memory, as Linux prints them).
/// </summary>
public sealed record Vma(ulong Start, ulong End, int Prot, bool Shared, long Offset, string? Name,
    int DevMajor = 0, int DevMinor = 0, ulong Inode = 0);

/// <summary>
/// A memory call at its entry, before the host runs it, that the supervisor's commit budget cannot cover:
/// <paramref name="Call"/> describes it (its Result is unused), <paramref name="Budget"/> is what the supervisor
/// still holds, <paramref name="Refill"/> how much more it would like to hold afterwards so that the next calls
/// need no round trip.
/// </summary>
public sealed record CommitRequest(MmEvent Call, long Budget, long Refill);

/// <summary>
/// The answer: <paramref name="Allowed"/> false means the call would take the guest over its limit (ENOMEM);
/// otherwise <paramref name="Charge"/> is what the call commits, exactly, by the server's map, and
/// <paramref name="Granted"/> what the supervisor's budget grows by (at least Charge minus the budget it had).
/// </summary>
public sealed record CommitReply(bool Allowed, long Charge, long Granted);

/// <summary>
/// Memory statistics of one guest process over its life (all its images): bytes mapped and committed now
/// (0 once it exited) and at their peak.
/// </summary>
public sealed record MmProcessStats(int Vpid, long Mapped, long PeakMapped, long Committed, long PeakCommitted);

/// <summary>
/// What an exec'd image may use without asking: <paramref name="Break"/>, its break (what brk(0) answers until a brk
/// moves it), and <paramref name="Window"/>, a placement window as <see cref="IMmServer.WindowAsync"/> grants one
/// (empty when nothing fits). Both are the server's decisions, made at the exec as they would be when asked later.
/// </summary>
public sealed record SpaceGrant(ulong Break, PlacementWindow Window);

/// <summary>Process <paramref name="Vpid"/> calls brk(<paramref name="Addr"/>).</summary>
public sealed record BrkRequest(int Vpid, ulong Addr);

/// <summary>
/// What brk does, as Linux's sys_brk decides it on the server's map: <paramref name="Current"/> is the break now,
/// <paramref name="Break"/> the break the call leaves if it succeeds (Current when it is refused, or a query), and
/// the pages to map [<paramref name="MapStart"/>, <paramref name="MapEnd"/>) (growth: private anonymous rw memory at
/// the heap's end) or to unmap [<paramref name="UnmapStart"/>, <paramref name="UnmapEnd"/>) (shrink); empty ranges
/// when no page changes. The supervisor carries the plan out in the guest and reports the break it got with an
/// mm/record of MmOp.Brk (its Result); a failure of the mapping leaves the break at Current, as Linux's brk does.
/// </summary>
public sealed record BrkPlan(ulong Current, ulong Break, ulong MapStart, ulong MapEnd, ulong UnmapStart, ulong UnmapEnd);

/// <summary>The guest's committed memory over all processes, its peak and the limit (0: none).</summary>
public sealed record MmUsage(long Committed, long PeakCommitted, long Limit, IReadOnlyList<MmProcessStats> Processes);

/// <summary>
/// The memory-management server: one map of mappings per address space, kept from the memory calls
/// the host carried out, and the guest's commit limit, decided before the host runs a call.
/// </summary>
[JsonRpcContract, PolyType.GenerateShape(IncludeMethods = PolyType.MethodShapeFlags.PublicInstance)]
public partial interface IMmServer : IKernelServer
{
    /// <summary>The commit limit and the layout policy: the first request after hello.</summary>
    [Restore(RestoreKind.Replay)]
    [JsonRpcMethod("mm/configure")]
    Task ConfigureAsync(MmConfig config);

    /// <summary>A new process: its space is a copy of the parent's, or the same space for CLONE_VM/vfork.</summary>
    [Restore(RestoreKind.Replay)]
    [Notification]
    [JsonRpcMethod("mm/space_created")]
    Task SpaceCreatedAsync(int parentVpid, int childVpid, bool shared);

    /// <summary>
    /// execve replaced the space of <paramref name="vpid"/> with a new one holding <paramref name="image"/>: what the
    /// host's execve mapped (program, interpreter, stack, vdso), as the host's /proc/PID/maps showed it at the exec.
    /// The answer is what the new image may use without asking (<see cref="SpaceGrant"/>): its break and a first
    /// placement window, so that a program's start (brk(0), its first mmap(NULL, ...)) needs no round trip.
    /// </summary>
    [Restore(RestoreKind.Replay)]
    [JsonRpcMethod("mm/space_exec")]
    Task<SpaceGrant> SpaceExecAsync(int vpid, IReadOnlyList<Vma> image);

    /// <summary>The process lets go of its space, which is gone once no process refers to it.</summary>
    [Restore(RestoreKind.Replay)]
    [Notification]
    [JsonRpcMethod("mm/space_exited")]
    Task SpaceExitedAsync(int vpid);

    /// <summary>A memory call the host carried out (one that failed changed nothing).</summary>
    [Restore(RestoreKind.Replay)]
    [Notification]
    [JsonRpcMethod("mm/record")]
    Task RecordAsync(MmEvent e);

    /// <summary>The mappings of the process's space in address order; none for a process without one (a zombie).</summary>
    [JsonRpcMethod("mm/maps")]
    Task<IReadOnlyList<Vma>> MapsAsync(int vpid);

    /// <summary>
    /// The text of /proc/PID/maps or /proc/PID/smaps_rollup, in Linux's format, made from the process's space: each
    /// mapped file's line listed in <see cref="ProcText.Files"/> with the host path the VFS turns into the guest's;
    /// smaps_rollup's counters are the host's (<see cref="ProcTextRequest.HostText"/>), which only the host can count.
    /// A process without a space (a zombie) has empty files; Errno ENOENT for another file name.
    /// </summary>
    [JsonRpcMethod("mm/proc_text")]
    Task<ProcText> ProcTextAsync(ProcTextRequest request);

    /// <summary>
    /// May the call commit what it asks for? Asked at the call's entry when the supervisor's budget is too small;
    /// a grant counts as committed until the supervisor reports the calls it paid for (<see cref="MmEvent.Charged"/>).
    /// </summary>
    [Restore(RestoreKind.Replay)]
    [JsonRpcMethod("mm/reserve")]
    Task<CommitReply> ReserveAsync(CommitRequest request);

    /// <summary>
    /// Grants the process a free range to place its mmap(NULL, ...) calls in (<see cref="PlacementWindow"/>); the
    /// process's earlier window, if any, is given back. The placements come back as mm/record events (their Result).
    /// </summary>
    [Restore(RestoreKind.Replay)]
    [JsonRpcMethod("mm/window")]
    Task<PlacementWindow> WindowAsync(WindowRequest request);

    /// <summary>
    /// The plan of a brk call (<see cref="BrkPlan"/>): where the heap of each space starts is the server's choice,
    /// made when the space is exec'd (right after the program's data, raised by a random number of pages unless the
    /// layout is deterministic). A query: the break changes with the mm/record that reports the outcome.
    /// </summary>
    [JsonRpcMethod("mm/brk")]
    Task<BrkPlan> BrkAsync(BrkRequest request);

    /// <summary>The guest's committed memory and each process's, for --stats.</summary>
    [JsonRpcMethod("mm/usage")]
    Task<MmUsage> UsageAsync();
}
