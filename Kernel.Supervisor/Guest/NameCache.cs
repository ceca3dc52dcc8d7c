using System.Collections.Concurrent;
using System.Diagnostics;
using System.IO.MemoryMappedFiles;
using Microsoft.Win32.SafeHandles;
using UmlMicro.Contracts.Servers;
using UmlMicro.Supervisor.Native;

namespace UmlMicro.Supervisor.Guest;

/// <summary>
/// The VFS's leases (PathResolution.Lease): path answers the VFS granted, given again to the same question without a
/// round trip while the lease epoch — a word of a memory file the VFS maps too — still holds the value the lease was
/// granted at, and for no longer than the VFS said. The VFS changes the epoch before any change of its namespace, so
/// a lease is never used past the change that would make it wrong; a restarted VFS changes it before its first answer.
/// The epoch's file is reached by the VFS as /proc/SUPERVISOR/fd/N: a guest, in its own user namespace, cannot open it.
/// <para>
/// What the cache decides itself is only what makes two questions the same: a path relative to a process's cwd is the
/// same question only from that process, and only while no cwd has changed and no process has been made since (a new
/// process may take the number of one that had another cwd); and a question asked with other credentials is another
/// question (the VFS checks search permission on the way, so its answer depends on who asks); and a question through
/// /proc, asked with the guest's processes, is the same only from the same thread with the same list.
/// </para>
/// <para>
/// Two kinds of change end leases that the VFS cannot revoke before they happen, because the host carries them out after
/// the VFS answered: a call that made a name voids leases that say a name is missing (<see cref="Created"/>), and a
/// call that changed an object's attributes (chmod, chown, an ACL) voids every lease (<see cref="AttributesChanged"/>):
/// a lease is used only while no such call has ended since its question was asked.
/// </para>
/// </summary>
internal sealed unsafe class NameCache : IDisposable
{
    private const int MaxLeases = 4096;

    /// <summary>What makes two questions the same.</summary>
    internal readonly record struct Question(string Path, string? Dir, int Vpid, long Cwds, PathOp Op, bool Follow, int Flags, Credentials? Creds, int Resolve = 0,
        int Vtid = 0, IReadOnlyList<ProcPid>? Processes = null);

    /// <summary>The counts of ended calls that void leases, as they were when a question was asked.</summary>
    internal readonly record struct Moment(long Creates, long Attributes);

    private sealed record Lease(PathResolution Answer, long Epoch, long Until, Moment Asked);

    private readonly ConcurrentDictionary<Question, Lease> _leases = new();
    private readonly SafeFileHandle _file;
    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private readonly long* _epoch;
    private long _cwds;
    private long _creates;
    private long _attributes;
    private long _used;

    /// <summary>The epoch's file for the VFS (VfsConfig.LeaseEpoch).</summary>
    public string EpochPath { get; }

    /// <summary>Lookups answered from a lease.</summary>
    public long Used => Interlocked.Read(ref _used);

    private NameCache(SafeFileHandle file)
    {
        _file = file;
        EpochPath = $"/proc/{Environment.ProcessId}/fd/{file.DangerousGetHandle()}";
        RandomAccess.SetLength(file, sizeof(long));
        _map = MemoryMappedFile.CreateFromFile(file, null, sizeof(long), MemoryMappedFileAccess.ReadWrite, HandleInheritability.None, leaveOpen: true);
        _view = _map.CreateViewAccessor(0, sizeof(long));
        byte* p = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        _epoch = (long*)(p + _view.PointerOffset);
    }

    /// <summary>A cache whose epoch file is made now; null when the host cannot make one (then nothing is leased).</summary>
    public static NameCache? Create() => Interop.MemFd("umlmicro-lease-epoch") is { IsInvalid: false } file ? new NameCache(file) : null;

    /// <summary>What makes <paramref name="r"/> the same question as another: taken once, before the VFS is asked, so
    /// that an answer is kept under the cwds it was asked under.</summary>
    public Question Of(PathRequest r)
    {
        bool fromCwd = !r.Arg.Path.StartsWith('/') && r.Arg.DirHostPath is null;
        // A question asked with the guest's processes (through /proc) is the asking thread's, and holds with that very
        // list only (ProcessList keeps one list object until Sched is sent a change): a procfs answer names its tasks.
        bool procs = r.Processes is not null;
        return new Question(r.Arg.Path, r.Arg.DirHostPath, fromCwd ? r.Vpid : 0, fromCwd ? Interlocked.Read(ref _cwds) : 0, r.Op, r.FollowLast, r.OpenFlags, r.Creds, r.Resolve,
            procs ? r.Vtid : 0, r.Processes);
    }

    /// <summary>How many calls that made a name or changed attributes have ended (<see cref="Created"/>,
    /// <see cref="AttributesChanged"/>): read, with <see cref="Of"/>, before the VFS is asked.</summary>
    public Moment Asked => new(Interlocked.Read(ref _creates), Interlocked.Read(ref _attributes));

    public bool TryGet(in Question question, out PathResolution answer)
    {
        if (_leases.TryGetValue(question, out var lease) && lease.Epoch == Volatile.Read(ref *_epoch) && Stopwatch.GetTimestamp() < lease.Until
            && lease.Asked.Attributes == Interlocked.Read(ref _attributes)
            && (lease.Answer.Errno == 0 || lease.Asked.Creates == Interlocked.Read(ref _creates)))
        {
            Interlocked.Increment(ref _used);
            answer = lease.Answer;
            return true;
        }
        answer = null!;
        return false;
    }

    /// <summary>Keeps <paramref name="answer"/> to <paramref name="question"/> if the VFS granted it as a lease;
    /// <paramref name="asked"/> is <see cref="Asked"/> as it was when the question was asked.</summary>
    public void Grant(in Question question, PathResolution answer, Moment asked)
    {
        if (answer.Lease == 0 || answer.LeaseMs <= 0) return;
        if (_leases.Count >= MaxLeases) _leases.Clear();
        _leases[question] = new Lease(answer, answer.Lease, Stopwatch.GetTimestamp() + answer.LeaseMs * Stopwatch.Frequency / 1000, asked);
    }

    /// <summary>
    /// A call that may have made a name has ended. The VFS revokes every lease before it answers such a call, but the
    /// host makes the name only afterwards: a lease on a missing name granted in between would outlive it. So a
    /// negative lease is used only while no such call has ended since its question was asked.
    /// </summary>
    public void Created() => Interlocked.Increment(ref _creates);

    /// <summary>A call that may have changed an object's mode, owner or ACL has ended: the VFS's answers to questions asked
    /// before it (search permission on the way) may no longer hold, and the host changed them only after the VFS answered.</summary>
    public void AttributesChanged() => Interlocked.Increment(ref _attributes);

    /// <summary>A process changed its cwd, or a process was made: a path relative to a cwd is a new question.</summary>
    public void CwdsChanged() => Interlocked.Increment(ref _cwds);

    public void Dispose()
    {
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
        _file.Dispose();
    }
}
