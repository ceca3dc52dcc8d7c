using UmlMicro.Supervisor.Native;

namespace UmlMicro.Supervisor.Ptrace;

/// <summary>
/// ptrace requests, typed. Every call must come from the tracer thread that attached the tracee
/// (the kernel checks the thread, not the process).
/// </summary>
internal static unsafe class PtraceOps
{
    public const long PTRACE_CONT = 7, PTRACE_KILL = 8, PTRACE_GETREGS = 12, PTRACE_SETREGS = 13,
        PTRACE_SYSCALL = 24, PTRACE_SETOPTIONS = 0x4200, PTRACE_GETEVENTMSG = 0x4201,
        PTRACE_SEIZE = 0x4206, PTRACE_INTERRUPT = 0x4207, PTRACE_LISTEN = 0x4208, PTRACE_SYSEMU = 31;

    public const int O_TRACESYSGOOD = 1, O_TRACEFORK = 2, O_TRACEVFORK = 4, O_TRACECLONE = 8,
        O_TRACEEXEC = 0x10, O_TRACEVFORKDONE = 0x20, O_TRACEEXIT = 0x40, O_TRACESECCOMP = 0x80,
        O_EXITKILL = 0x100000;

    public const int EVENT_FORK = 1, EVENT_VFORK = 2, EVENT_CLONE = 3, EVENT_EXEC = 4, EVENT_VFORK_DONE = 5,
        EVENT_EXIT = 6, EVENT_SECCOMP = 7, EVENT_STOP = 128;

    /// <summary>The options every guest task is traced with: follow every new task, see execs, mark syscall stops.</summary>
    public const int GuestOptions = O_TRACESYSGOOD | O_TRACEFORK | O_TRACEVFORK | O_TRACECLONE | O_TRACEEXEC | O_EXITKILL;

    /// <summary>Stop signal of a syscall stop with PTRACE_O_TRACESYSGOOD.</summary>
    public const int SyscallTrap = 5 | 0x80;

    public static bool Seize(int tid, int options) => Interop.ptrace(PTRACE_SEIZE, tid, 0, options) == 0;

    /// <summary>Resumes the tracee until its next syscall stop, delivering <paramref name="signal"/> (0 for none).</summary>
    public static bool Syscall(int tid, int signal = 0) => Interop.ptrace(PTRACE_SYSCALL, tid, 0, signal) == 0;

    public static bool Cont(int tid, int signal = 0) => Interop.ptrace(PTRACE_CONT, tid, 0, signal) == 0;

    /// <summary>Leaves a tracee in group-stop but lets the kernel report its next job-control change.</summary>
    public static bool Listen(int tid) => Interop.ptrace(PTRACE_LISTEN, tid, 0, 0) == 0;

    public static bool GetRegs(int tid, out UserRegs regs)
    {
        fixed (UserRegs* p = &regs)
            return Interop.ptrace(PTRACE_GETREGS, tid, 0, (nint)p) == 0;
    }

    public static bool SetRegs(int tid, in UserRegs regs)
    {
        fixed (UserRegs* p = &regs)
            return Interop.ptrace(PTRACE_SETREGS, tid, 0, (nint)p) == 0;
    }

    public static long EventMessage(int tid)
    {
        ulong msg = 0;
        Interop.ptrace(PTRACE_GETEVENTMSG, tid, 0, (nint)(&msg));
        return (long)msg;
    }
}
