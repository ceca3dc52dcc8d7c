using UmlMicro.Supervisor.Guest;
using UmlMicro.Supervisor.Native;
using UmlMicro.Supervisor.Ptrace;
using static UmlMicro.Supervisor.Native.Interop;

namespace UmlMicro.Supervisor.Tracing;

/// <summary>Syscall injection: the kernel makes a stopped task run a syscall of its choosing.</summary>
internal sealed unsafe partial class TracerThread
{
    /// <summary>The task died while the kernel was making it run a syscall.</summary>
    private sealed class TaskVanished() : Exception("the task died during an injected syscall");

    /// <summary>
    /// Makes <paramref name="task"/>, stopped at the entry of a syscall, first run syscall <paramref name="nr"/> with
    /// <paramref name="args"/>, and returns its result; the task is then back at the entry of its own call, with its
    /// own registers, as if nothing happened. The injected call is run with PTRACE_SYSCALL to its exit stop (in
    /// sysemu, where the host skips the entry call anyway, it is re-issued over the syscall instruction); then the
    /// task goes back over the instruction and re-enters its own call. Signals that arrive meanwhile are held and
    /// sent again afterwards.
    /// </summary>
    public long Inject(GuestTask task, long nr, ReadOnlySpan<ulong> args)
    {
        int tid = task.HostTid;
        if (!PtraceOps.GetRegs(tid, out var saved)) throw new GuestFault(0);
        var regs = saved;
        for (int i = 0; i < args.Length; i++) regs.SetArg(i, args[i]);
        if (mode == TrapMode.Sysemu)
        {
            regs.Rax = (ulong)nr;
            regs.Rip -= 2;
        }
        else
        {
            regs.OrigRax = (ulong)nr;
        }
        var held = new List<int>();
        PtraceOps.SetRegs(tid, regs);
        PtraceOps.Resume(tid, PtraceOps.PTRACE_SYSCALL, 0);
        bool entered = mode != TrapMode.Sysemu; // sysemu first reports the skipped call's exit, then the injected entry
        long result;
        while (true)
        {
            var stop = WaitSyscallStop(task, PtraceOps.PTRACE_SYSCALL, held);
            if (stop.Op == SyscallStopInfo.OpExit && entered)
            {
                result = stop.Result;
                break;
            }
            if (stop.Op == SyscallStopInfo.OpEntry) entered = true;
            PtraceOps.Resume(tid, PtraceOps.PTRACE_SYSCALL, 0);
        }

        // Back over the syscall instruction with the task's own number: it enters its own call again.
        saved.Rip -= 2;
        saved.Rax = saved.OrigRax;
        PtraceOps.SetRegs(tid, saved);
        PtraceOps.Resume(tid, _idle, 0);
        while (WaitSyscallStop(task, _idle, held).Op is not (SyscallStopInfo.OpEntry or SyscallStopInfo.OpSeccomp))
            PtraceOps.Resume(tid, _idle, 0);
        foreach (var sig in held) Interop.tgkill(task.HostTgid, tid, sig);
        task.Call.ForgetRegs();
        return result;
    }

    /// <summary>Waits for the next syscall stop of <paramref name="task"/> alone, holding back signals and passing other stops.</summary>
    private SyscallStopInfo WaitSyscallStop(GuestTask task, long request, List<int> held)
    {
        int tid = task.HostTid, status;
        while (true)
        {
            int r = waitpid(tid, &status, __WALL);
            if (r < 0 && LastErrno == EINTR) continue;
            if (r != tid || !WIFSTOPPED(status))
            {
                if (r == tid) TaskGone(tid, status);
                throw new TaskVanished();
            }
            int sig = WSTOPSIG(status), ev = PtraceEvent(status);
            if (sig == PtraceOps.SyscallTrap || ev == PtraceOps.EVENT_SECCOMP)
            {
                if (PtraceOps.GetSyscallInfo(tid, out var info)) return info;
                continue;
            }
            if (ev == 0) held.Add(sig); // a signal for the guest: after the injection
            PtraceOps.Resume(tid, request, 0);
        }
    }
}
