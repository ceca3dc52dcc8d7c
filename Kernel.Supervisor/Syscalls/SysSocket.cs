using System.Text;
using UmlMicro.Contracts.Linux;
using UmlMicro.Contracts.Servers;
using UmlMicro.Contracts.Syscalls;
using UmlMicro.Supervisor.Guest;

namespace UmlMicro.Supervisor.Syscalls;

/// <summary>
/// Sockets whose address is a path (AF_UNIX): the path is a guest path, so bind and connect go through the VFS
/// like open does, and so does the destination of a datagram (sendto's address, sendmsg's and sendmmsg's msg_name);
/// getsockname/getpeername show the guest the path it bound, not the host path the host was given. Abstract
/// addresses (a leading NUL) and every other family pass untouched.
/// </summary>
internal static class SysSocket
{
    private const ushort AF_UNIX = 1;
    private const int SunPathOffset = 2, SunPathMax = 108;
    private const int MsghdrSize = 56, MmsghdrSize = 64, MsgLenOffset = 56;

    /// <summary>
    /// A host path that cannot exist (no process has pid 0): where a send to a guest name that does not exist goes,
    /// so the host answers in its own order — ENOENT for a datagram, EISCONN or EOPNOTSUPP for a stream socket, which
    /// never looks the name up — as Linux does for a path that does not exist.
    /// </summary>
    private const string NoSuchHostPath = "/proc/0/umlmicro-no-such-socket";

    public static void Register(Dictionary<string, EntryHandler> h)
    {
        h["bind"] = c => Address(c, PathOp.Create, 1, 2);
        h["connect"] = c => Address(c, PathOp.Stat, 1, 2);
        h["sendto"] = c => Address(c, PathOp.Stat, 4, 5, send: true);
        h["sendmsg"] = SendMsg;
        h["sendmmsg"] = SendMmsg;
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
        return PathBytes.Decode(raw.AsSpan(0, end < 0 ? raw.Length : end));
    }

    /// <summary>
    /// The sockaddr in argument <paramref name="addrArg"/> (its length in <paramref name="lenArg"/>): a path is resolved
    /// by the VFS, and the host is given a sockaddr with the host path, in scratch slot 1.
    /// </summary>
    private static void Address(SyscallCall c, PathOp op, int addrArg, int lenArg, bool send = false)
    {
        if (c.Arg(addrArg) == 0 || !OnSocket(c)) return; // send() is sendto without an address: nothing to look at
        if (HostAddress(c, c.Arg(addrArg), c.IntArg(lenArg), op, send) is { } sockaddr)
        {
            ulong scratch = c.ScratchSlotAddress(1);
            GuestMemory.Write(c.Tid, scratch, sockaddr);
            c.SetArg(addrArg, scratch);
            c.SetArg(lenArg, (ulong)sockaddr.Length);
        }
    }

    /// <summary>
    /// Linux looks the fd up before the address: a bad fd or one that is no socket is the host's EBADF or ENOTSOCK,
    /// whatever the path says (and the host never uses the guest's path then).
    /// </summary>
    private static bool OnSocket(SyscallCall c) =>
        SysFile.FdTarget(c.Tid, c.IntArg(0)) is { } socket && socket.StartsWith("socket:", StringComparison.Ordinal);

    /// <summary>
    /// The sockaddr the host must be given instead of the guest's at <paramref name="addr"/>, or null when the guest's
    /// own will do (no path, or a path that names the right file already). A name bind makes is followed up by
    /// SysFile.Ask, as every path call's.
    /// </summary>
    private static byte[]? HostAddress(SyscallCall c, ulong addr, int length, PathOp op, bool send)
    {
        if (PathOf(c, addr, length) is not { } path) return null;
        // A socket of another family refuses an AF_UNIX address before it would look at a path (EAFNOSUPPORT, EINVAL):
        // the host answers, from the guest's own sockaddr, and no name is looked up or made.
        if (Native.Interop.SocketProtocol($"/proc/{c.Tid}/fd/{c.IntArg(0)}") is { } protocol && !protocol.StartsWith("UNIX", StringComparison.Ordinal))
            return null;
        var r = SysFile.Ask(c, new PathRequest(c.Task.Vpid, c.Task.Vtid, new PathArg(path), op, FollowLast: op != PathOp.Create, SysCreds.Of(c)));
        string host;
        if (send && r.Errno == Errno.ENOENT) host = NoSuchHostPath;
        // bind on an existing name is EADDRINUSE; connect to a missing one ENOENT, as Linux says.
        else if (r.Errno != 0) throw new SyscallError(r.Errno == Errno.EEXIST ? Errno.EADDRINUSE : r.Errno);
        else if (r.HostPath is null) return null;
        else host = r.HostPath;
        var bytes = PathBytes.Encode(host);
        if (bytes.Length >= SunPathMax) throw new SyscallError(Errno.ENAMETOOLONG);
        var sockaddr = new byte[SunPathOffset + bytes.Length + 1];
        BitConverter.TryWriteBytes(sockaddr, AF_UNIX);
        bytes.CopyTo(sockaddr, SunPathOffset);
        c.Note = host;
        return sockaddr;
    }

    /// <summary>
    /// sendmsg: msg_name (struct msghdr: msg_name @0, msg_namelen @8) is a destination like sendto's. The host is given a
    /// copy of the msghdr (scratch slot 2) whose name is the host's sockaddr (slot 1); the data and control buffers stay
    /// the guest's, and the host writes nothing back into a msghdr it sends.
    /// </summary>
    private static void SendMsg(SyscallCall c)
    {
        if (c.Arg(1) == 0) return;
        var header = new byte[MsghdrSize];
        try
        {
            GuestMemory.Read(c.Tid, c.Arg(1), header);
        }
        catch (GuestFault)
        {
            return; // the host's EFAULT
        }
        if (BitConverter.ToUInt64(header, 0) == 0 || !OnSocket(c)) return;
        if (HostAddress(c, BitConverter.ToUInt64(header, 0), BitConverter.ToInt32(header, 8), PathOp.Stat, send: true) is not { } sockaddr) return;
        ulong name = c.ScratchSlotAddress(1), copy = c.ScratchSlotAddress(2);
        GuestMemory.Write(c.Tid, name, sockaddr);
        BitConverter.TryWriteBytes(header.AsSpan(0), name);
        BitConverter.TryWriteBytes(header.AsSpan(8), sockaddr.Length);
        GuestMemory.Write(c.Tid, copy, header);
        c.SetArg(1, copy);
    }

    /// <summary>
    /// sendmmsg: each message's msg_name as in sendmsg. When one of them is a path, the host is given a copy of the
    /// vector (with the host's sockaddrs) in the scratch area, as many messages as fit there (the call may send fewer
    /// than asked; its result says how many), and each sent message's msg_len is copied back at exit.
    /// </summary>
    private static void SendMmsg(SyscallCall c)
    {
        if (c.Arg(1) == 0) return;
        int room = SyscallCall.ScratchBytesFrom(1), perMessage = MmsghdrSize + SunPathOffset + SunPathMax;
        int count = (int)Math.Min((uint)c.IntArg(2), (uint)(room / perMessage));
        if (count == 0) return;
        var vector = new byte[count * MmsghdrSize];
        try
        {
            GuestMemory.Read(c.Tid, c.Arg(1), vector);
        }
        catch (GuestFault)
        {
            return; // the host's EFAULT, or a partial send up to the bad message: its own
        }
        bool named = false;
        for (int i = 0; i < count; i++) named |= BitConverter.ToUInt64(vector, i * MmsghdrSize) != 0;
        if (!named || !OnSocket(c)) return;
        var names = new byte[]?[count];
        bool any = false;
        for (int i = 0; i < count; i++)
        {
            int at = i * MmsghdrSize;
            names[i] = HostAddress(c, BitConverter.ToUInt64(vector, at), BitConverter.ToInt32(vector, at + 8), PathOp.Stat, send: true);
            any |= names[i] is not null;
        }
        if (!any) return;
        ulong copy = c.ScratchSlotAddress(1), next = copy + (ulong)vector.Length;
        for (int i = 0; i < count; i++)
        {
            if (names[i] is not { } sockaddr) continue;
            GuestMemory.Write(c.Tid, next, sockaddr);
            BitConverter.TryWriteBytes(vector.AsSpan(i * MmsghdrSize), next);
            BitConverter.TryWriteBytes(vector.AsSpan(i * MmsghdrSize + 8), sockaddr.Length);
            next += (ulong)sockaddr.Length;
        }
        GuestMemory.Write(c.Tid, copy, vector);
        c.SetArg(1, copy);
        c.SetArg(2, (ulong)count);
        ulong guestVector = c.Arg(1);
        c.AtExit(x =>
        {
            for (int i = 0; i < x.Result; i++)
                GuestMemory.Write(x.Tid, guestVector + (ulong)(i * MmsghdrSize + MsgLenOffset),
                    GuestMemory.Read<uint>(x.Tid, copy + (ulong)(i * MmsghdrSize + MsgLenOffset)));
        });
    }

    /// <summary>At exit: a host path in the returned address becomes the guest path it stands for.</summary>
    private static void ShowGuestPath(SyscallCall c)
    {
        if (c.Result != 0 || c.Arg(1) == 0 || c.Arg(2) == 0) return;
        int length = GuestMemory.Read<int>(c.Tid, c.Arg(2));
        if (PathOf(c, c.Arg(1), Math.Min(length, SunPathOffset + SunPathMax)) is not { } host || !host.StartsWith('/')) return;
        if (c.Kernel.Vfs.Call(v => v.GuestPathAsync(host)) is not { } guest || guest == host) return;
        var bytes = PathBytes.EncodeZ(guest);
        int capacity = GuestMemory.Read<int>(c.Tid, c.Arg(2)) - SunPathOffset;
        // Like Linux: the address is cut to the caller's buffer, the length says how long it really is.
        GuestMemory.Write(c.Tid, c.Arg(1) + SunPathOffset, bytes.AsSpan(0, Math.Max(0, Math.Min(bytes.Length, capacity))));
        GuestMemory.Write(c.Tid, c.Arg(2), SunPathOffset + bytes.Length);
    }
}
