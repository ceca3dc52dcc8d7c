using System.IO.MemoryMappedFiles;
using UmlMicro.Contracts.Servers;

namespace UmlMicro.Servers.Vfs;

/// <summary>
/// The lease epoch (PathResolution.Lease): a 64-bit counter the supervisor maps too. Revoking every lease granted so
/// far is one store; the supervisor sees it at its next reuse of any lease, with no message. A restarted server goes
/// on from the value its predecessor left, one higher: it cannot know what that one granted.
/// </summary>
internal sealed unsafe class LeaseEpoch : IDisposable
{
    private readonly MemoryMappedFile _file;
    private readonly MemoryMappedViewAccessor _view;
    private readonly long* _word;

    private LeaseEpoch(MemoryMappedFile file, MemoryMappedViewAccessor view)
    {
        (_file, _view) = (file, view);
        byte* p = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        _word = (long*)(p + view.PointerOffset);
        Revoke();
    }

    /// <summary>The epoch of the file <paramref name="path"/> (the supervisor made it 8 bytes long), or null when
    /// <paramref name="path"/> is "" or the server grants no leases.</summary>
    public static LeaseEpoch? Open(string? path, bool grant)
    {
        if (!grant || string.IsNullOrEmpty(path)) return null;
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
            var file = MemoryMappedFile.CreateFromFile(stream, null, sizeof(long), MemoryMappedFileAccess.ReadWrite, HandleInheritability.None, leaveOpen: false);
            return new LeaseEpoch(file, file.CreateViewAccessor(0, sizeof(long)));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw ProtocolViolation.Of($"cannot map the lease epoch {path}: {e.Message}");
        }
    }

    /// <summary>The value a lease granted now carries (never 0, which means "no lease").</summary>
    public long Current => Volatile.Read(ref *_word);

    /// <summary>Every lease granted so far is void from now on.</summary>
    public void Revoke()
    {
        if (Interlocked.Increment(ref *_word) == 0) Interlocked.Increment(ref *_word);
    }

    public void Dispose()
    {
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _file.Dispose();
    }
}
