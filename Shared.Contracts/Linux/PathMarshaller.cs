using System;
using System.Runtime.InteropServices;
using System.Runtime.InteropServices.Marshalling;

namespace UmlMicro.Contracts.Linux;

/// <summary>
/// Hands the host (through P/Invoke, in the supervisor and the VFS) a path's own bytes (<see cref="PathBytes"/>): a name the guest made of bytes that are not UTF-8 is
/// carried as U+F780..U+F7FF, which UTF-8 marshalling would turn into three bytes each.
/// </summary>
[CustomMarshaller(typeof(string), MarshalMode.Default, typeof(PathMarshaller))]
public static unsafe class PathMarshaller
{
    public static byte* ConvertToUnmanaged(string? path)
    {
        if (path is null) return null;
        int n = PathBytes.ByteCount(path);
        var p = (byte*)NativeMemory.Alloc((nuint)n + 1);
        PathBytes.Encode(path, new Span<byte>(p, n));
        p[n] = 0;
        return p;
    }

    public static string? ConvertToManaged(byte* p) =>
        p is null ? null : PathBytes.Decode(MemoryMarshal.CreateReadOnlySpanFromNullTerminated(p));

    public static void Free(byte* p) => NativeMemory.Free(p);
}
