using System.Buffers;
using System.Text;
using UmlMicro.Supervisor.Native;

namespace UmlMicro.Supervisor.Guest;

/// <summary>
/// Reads and writes a guest's memory with process_vm_readv/writev. A bad guest pointer is a
/// <see cref="GuestFault"/> that the syscall layer turns into EFAULT; it never escapes the tracer.
/// </summary>
internal static unsafe class GuestMemory
{
    private const int Page = 4096;

    public static void Read(int tid, ulong addr, Span<byte> into)
    {
        if (into.IsEmpty) return;
        fixed (byte* p = into)
        {
            var local = new Interop.IoVec { Base = (nint)p, Length = (nuint)into.Length };
            var remote = new Interop.IoVec { Base = (nint)addr, Length = (nuint)into.Length };
            if (Interop.process_vm_readv(tid, &local, 1, &remote, 1, 0) != into.Length) throw new GuestFault(addr);
        }
    }

    public static void Write(int tid, ulong addr, ReadOnlySpan<byte> from)
    {
        if (from.IsEmpty) return;
        fixed (byte* p = from)
        {
            var local = new Interop.IoVec { Base = (nint)p, Length = (nuint)from.Length };
            var remote = new Interop.IoVec { Base = (nint)addr, Length = (nuint)from.Length };
            if (Interop.process_vm_writev(tid, &local, 1, &remote, 1, 0) != from.Length) throw new GuestFault(addr);
        }
    }

    public static T Read<T>(int tid, ulong addr) where T : unmanaged
    {
        T value = default;
        Read(tid, addr, new Span<byte>(&value, sizeof(T)));
        return value;
    }

    public static void Write<T>(int tid, ulong addr, T value) where T : unmanaged =>
        Write(tid, addr, new ReadOnlySpan<byte>(&value, sizeof(T)));

    /// <summary>
    /// Reads a NUL-terminated string of at most <paramref name="max"/> bytes (terminator included). Reads go
    /// page by page so a string that ends just before an unmapped page is still read. Returns null when no
    /// terminator is found within <paramref name="max"/> bytes (the caller's ENAMETOOLONG or E2BIG).
    /// </summary>
    public static byte[]? ReadCString(int tid, ulong addr, int max)
    {
        if (addr == 0) throw new GuestFault(addr);
        var buf = ArrayPool<byte>.Shared.Rent(max);
        try
        {
            int got = 0;
            while (got < max)
            {
                var cur = addr + (ulong)got;
                int chunk = (int)Math.Min((ulong)(max - got), Page - (cur % Page));
                Read(tid, cur, buf.AsSpan(got, chunk));
                int nul = buf.AsSpan(got, chunk).IndexOf((byte)0);
                if (nul >= 0) return buf.AsSpan(0, got + nul).ToArray();
                got += chunk;
            }
            return null;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buf);
        }
    }

    public static string? ReadString(int tid, ulong addr, int max) =>
        ReadCString(tid, addr, max) is { } b ? UmlMicro.Contracts.Linux.PathBytes.Decode(b) : null;
}

/// <summary>The guest named memory it cannot access.</summary>
internal sealed class GuestFault(ulong address) : Exception($"guest fault at 0x{address:x}")
{
    public ulong Address { get; } = address;
}
