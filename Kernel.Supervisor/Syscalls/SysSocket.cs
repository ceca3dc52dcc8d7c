using System.Text;
using UmlMicro.Contracts.Linux;
using UmlMicro.Contracts.Servers;
using UmlMicro.Contracts.Syscalls;
using UmlMicro.Supervisor.Guest;

namespace UmlMicro.Supervisor.Syscalls;

/// <summary>
/// Sockets whose address is a path (AF_UNIX): the path is a guest path, so bind and connect go through the VFS
/// like open does, and getsockname/getpeername show the guest the path it bound, not the host path the host
/// was given. Abstract addresses (a leading NUL) and every other family pass untouched.
/// </summary>
internal static class SysSocket
{
    private const ushort AF_UNIX = 1;
    private const int SunPathOffset = 2, SunPathMax = 108;

    public static void Register(Dictionary<string, EntryHandler> h)
    {
        h["bind"] = c => Address(c, PathOp.Create);
        h["connect"] = c => Address(c, PathOp.Stat);
        h["getsockname"] = c => c.AtExit(ShowGuestPath);
        h["getpeername"] = c => c.AtExit(ShowGuestPath);
    }

    /// <summary>The path in a sockaddr_un (argument 1, length in argument 2), or null when it has none.</summary>
    private static string? PathOf(SyscallCall c, ulong addr, int length)
    {
        if (addr == 0 || length <= SunPathOffset || length > SunPathOffset + SunPathMax) return null;
        if (GuestMemory.Read<ushort>(c.Tid, addr) != AF_UNIX) return null;
        var raw = new byte[length - SunPathOffset];
        GuestMemory.Read(c.Tid, addr + SunPathOffset, raw);
        if (raw[0] == 0) return null; // abstract: no filesystem name
        int end = Array.IndexOf(raw, (byte)0);
        return Encoding.UTF8.GetString(raw, 0, end < 0 ? raw.Length : end);
    }

    private static void Address(SyscallCall c, PathOp op)
    {
        // Linux looks the fd up before the address: a bad fd or one that is no socket is the host's EBADF or
        // ENOTSOCK, whatever the path says (and the host never uses the guest's path then).
        if (SysFile.FdTarget(c.Tid, c.IntArg(0)) is not { } socket || !socket.StartsWith("socket:", StringComparison.Ordinal)) return;
        if (PathOf(c, c.Arg(1), c.IntArg(2)) is not { } path) return;
        var r = SysFile.Ask(c, new PathRequest(c.Task.Vpid, c.Task.Vtid, new PathArg(path), op, FollowLast: op != PathOp.Create));
        // bind on an existing name is EADDRINUSE; connect to a missing one ENOENT, as Linux says.
        if (r.Errno != 0) throw new SyscallError(r.Errno == Errno.EEXIST ? Errno.EADDRINUSE : r.Errno);
        if (r.HostPath is { } host)
        {
            var bytes = Encoding.UTF8.GetBytes(host);
            if (bytes.Length >= SunPathMax) throw new SyscallError(Errno.ENAMETOOLONG);
            var sockaddr = new byte[SunPathOffset + bytes.Length + 1];
            BitConverter.TryWriteBytes(sockaddr, AF_UNIX);
            bytes.CopyTo(sockaddr, SunPathOffset);
            ulong scratch = c.ScratchSlotAddress(1);
            GuestMemory.Write(c.Tid, scratch, sockaddr);
            c.SetArg(1, scratch);
            c.SetArg(2, (ulong)sockaddr.Length);
            c.Note = host;
        }
        if (r.CommitOnSuccess && r.GuestPath is { } created)
            c.AtExit(x =>
            {
                if (x.Result == 0) x.Kernel.Vfs.Post(nameof(IVfsServer.CreatedAsync), created);
            });
    }

    /// <summary>At exit: a host path in the returned address becomes the guest path it stands for.</summary>
    private static void ShowGuestPath(SyscallCall c)
    {
        if (c.Result != 0 || c.Arg(1) == 0 || c.Arg(2) == 0) return;
        int length = GuestMemory.Read<int>(c.Tid, c.Arg(2));
        if (PathOf(c, c.Arg(1), Math.Min(length, SunPathOffset + SunPathMax)) is not { } host || !host.StartsWith('/')) return;
        if (c.Kernel.Vfs.Call(v => v.GuestPathAsync(host)) is not { } guest || guest == host) return;
        var bytes = Encoding.UTF8.GetBytes(guest + "\0");
        int capacity = GuestMemory.Read<int>(c.Tid, c.Arg(2)) - SunPathOffset;
        // Like Linux: the address is cut to the caller's buffer, the length says how long it really is.
        GuestMemory.Write(c.Tid, c.Arg(1) + SunPathOffset, bytes.AsSpan(0, Math.Max(0, Math.Min(bytes.Length, capacity))));
        GuestMemory.Write(c.Tid, c.Arg(2), SunPathOffset + bytes.Length);
    }
}
