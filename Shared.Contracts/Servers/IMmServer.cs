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
}

public sealed record MmConfig(long MemoryLimitBytes);

/// <summary>
/// A memory call the host carried out in process <paramref name="Vpid"/>, with its arguments and the host's
/// result (negative errno on failure). For mremap <paramref name="NewLength"/> and <paramref name="Result"/> carry the new extent.
/// </summary>
public sealed record MmEvent(int Vpid, MmOp Op, ulong Addr, ulong Length, ulong NewLength, int Prot, int Flags, int Fd, long Offset, long Result);

/// <summary>One mapping of an address space, as /proc/PID/maps shows it.</summary>
public sealed record Vma(ulong Start, ulong End, int Prot, bool Shared, long Offset, string? Name);

/// <summary>
/// The memory-management server: one map of mappings per address space, kept from the memory calls
/// the host carried out.
/// </summary>
public interface IMmServer : IKernelServer
{
    [JsonRpcMethod("mm/configure")]
    Task ConfigureAsync(MmConfig config);

    /// <summary>A new process: its space is a copy of the parent's, or the same space for CLONE_VM/vfork.</summary>
    [JsonRpcMethod("mm/space_created")]
    Task SpaceCreatedAsync(int parentVpid, int childVpid, bool shared);

    /// <summary>execve replaced the space of <paramref name="vpid"/> with a new, empty one.</summary>
    [JsonRpcMethod("mm/space_exec")]
    Task SpaceExecAsync(int vpid);

    [JsonRpcMethod("mm/space_exited")]
    Task SpaceExitedAsync(int vpid);

    [JsonRpcMethod("mm/record")]
    Task RecordAsync(MmEvent e);

    [JsonRpcMethod("mm/maps")]
    Task<IReadOnlyList<Vma>> MapsAsync(int vpid);
}
