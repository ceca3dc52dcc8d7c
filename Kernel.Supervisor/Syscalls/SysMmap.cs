using UmlMicro.Contracts.Linux;
using UmlMicro.Contracts.Servers;

namespace UmlMicro.Supervisor.Syscalls;

/// <summary>
/// Memory calls: the host maps, the MM server keeps the map of every address space from what the host did and
/// governs the guest's commit limit. Under a limit (--mem), a call that would commit memory is paid for from the
/// supervisor's <see cref="CommitBudget"/> at its entry stop, before the host runs it; one the limit does not allow
/// fails with ENOMEM, and brk, as Linux's, returns the old break instead (the host answers brk(0) in its place).
/// </summary>
internal static class SysMmap
{
    public static void Register(Dictionary<string, EntryHandler> h)
    {
        h["brk"] = c => Enter(c, MmOp.Brk, c.Arg(0), 0, 0, 0, 0, -1, 0);
        h["mmap"] = c => Enter(c, MmOp.Mmap, c.Arg(0), c.Arg(1), 0, c.IntArg(2), c.IntArg(3), c.IntArg(4), c.LongArg(5));
        h["munmap"] = c => Enter(c, MmOp.Munmap, c.Arg(0), c.Arg(1), 0, 0, 0, -1, 0);
        h["mprotect"] = c => Enter(c, MmOp.Mprotect, c.Arg(0), c.Arg(1), 0, c.IntArg(2), 0, -1, 0);
        h["mremap"] = c => Enter(c, MmOp.Mremap, c.Arg(0), c.Arg(1), c.Arg(2), 0, c.IntArg(3), -1, 0);
    }

    private static void Enter(SyscallCall c, MmOp op, ulong addr, ulong len, ulong newLen, int prot, int flags, int fd, long offset)
    {
        var e = new MmEvent(c.Task.Vpid, op, addr, len, newLen, prot, flags, fd, offset, Result: 0);
        var budget = c.Kernel.Commit;
        if (budget.Limited)
        {
            if (budget.TryCharge(e, out long charged))
            {
                e = e with { Charged = charged };
            }
            else if (op == MmOp.Brk)
            {
                c.SetArg(0, 0);
                c.Note = "over the memory limit";
            }
            else
            {
                c.Fail(Errno.ENOMEM);
                c.Note = "over the memory limit";
                return;
            }
        }
        c.AtExit(x => Exit(x, e));
    }

    private static void Exit(SyscallCall c, MmEvent e)
    {
        if (c.Result < 0 && c.Result >= -4095)
        {
            c.Kernel.Commit.Refund(e.Charged); // the host refused: nothing changed
            return;
        }
        if (e.Op == MmOp.Brk && c.Kernel.Commit.Limited) c.Kernel.Commit.NoteBreak(e.Vpid, (ulong)c.Result);
        c.Kernel.Mm.Post(nameof(IMmServer.RecordAsync), e with { Result = c.Result });
    }
}
