using UmlMicro.Contracts.Servers;

namespace UmlMicro.Supervisor.Syscalls;

/// <summary>
/// Memory calls: the host maps, the MM server keeps the map of every address space from what the
/// host did (its decisions — limits, placement — come with the MM issue).
/// </summary>
internal static class SysMmap
{
    public static void Register(Dictionary<string, EntryHandler> h)
    {
        h["brk"] = c => c.AtExit(x => Record(x, MmOp.Brk, x.Arg(0), 0, 0, 0, 0, -1, 0));
        h["mmap"] = c => c.AtExit(x => Record(x, MmOp.Mmap, x.Arg(0), x.Arg(1), 0, x.IntArg(2), x.IntArg(3), x.IntArg(4), x.LongArg(5)));
        h["munmap"] = c => c.AtExit(x => Record(x, MmOp.Munmap, x.Arg(0), x.Arg(1), 0, 0, 0, -1, 0));
        h["mprotect"] = c => c.AtExit(x => Record(x, MmOp.Mprotect, x.Arg(0), x.Arg(1), 0, x.IntArg(2), 0, -1, 0));
        h["mremap"] = c => c.AtExit(x => Record(x, MmOp.Mremap, x.Arg(0), x.Arg(1), x.Arg(2), 0, x.IntArg(3), -1, 0));
    }

    private static void Record(SyscallCall c, MmOp op, ulong addr, ulong len, ulong newLen, int prot, int flags, int fd, long offset)
    {
        if (c.Result < 0 && c.Result >= -4095) return; // the host refused: nothing changed
        var e = new MmEvent(c.Task.Vpid, op, addr, len, newLen, prot, flags, fd, offset, c.Result);
        c.Kernel.Mm.Post(nameof(IMmServer.RecordAsync), e);
    }
}
