using UmlMicro.Supervisor.Native;

namespace UmlMicro.Supervisor.Ptrace;

/// <summary>
/// ptrace requests, typed. Every call must come from the tracer thread that attached the tracee
/// (the kernel checks the thread, not the process).
/// </summary>
/// <summary>struct ptrace_syscall_info (linux/ptrace.h).</summary>
[System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
internal unsafe struct SyscallStopInfo
{
    public const byte OpNone = 0, OpEntry = 1, OpExit = 2, OpSeccomp = 3;
    public const uint ArchX86_64 = 0xC000003E;

    public byte Op;
    private fixed byte _pad[3];
    public uint Arch;
    public ulong InstructionPointer;
    public ulong StackPointer;
    /// <summary>Entry/seccomp: the syscall number. Exit: the result (rval).</summary>
    public ulong NrOrResult;
    /// <summary>Entry/seccomp: the six arguments. Exit: Args[0] is is_error.</summary>
    public fixed ulong Args[6];
    public uint SeccompData;
    private uint _pad2;

    public readonly long Result => (long)NrOrResult;
}

internal static unsafe class PtraceOps
{
    public const long PTRACE_CONT = 7, PTRACE_GETREGS = 12, PTRACE_SETREGS = 13,
        PTRACE_SYSCALL = 24, PTRACE_SETOPTIONS = 0x4200, PTRACE_GETEVENTMSG = 0x4201,
        PTRACE_SEIZE = 0x4206, PTRACE_INTERRUPT = 0x4207, PTRACE_LISTEN = 0x4208,
        PTRACE_GETSIGINFO = 0x4202, PTRACE_SETSIGINFO = 0x4203, PTRACE_SYSEMU = 31,
        PTRACE_GET_SYSCALL_INFO = 0x420e;

    public const int O_TRACESYSGOOD = 1, O_TRACEFORK = 2, O_TRACEVFORK = 4, O_TRACECLONE = 8,
        O_TRACEEXEC = 0x10, O_TRACESECCOMP = 0x80,
        O_EXITKILL = 0x100000;

    public const int EVENT_FORK = 1, EVENT_VFORK = 2, EVENT_CLONE = 3, EVENT_EXEC = 4, EVENT_SECCOMP = 7, EVENT_STOP = 128;

    /// <summary>The options every guest task is traced with: follow every new task, see execs, mark syscall stops.</summary>
    public const int GuestOptions = O_TRACESYSGOOD | O_TRACEFORK | O_TRACEVFORK | O_TRACECLONE | O_TRACEEXEC | O_EXITKILL;

    /// <summary>Stop signal of a syscall stop with PTRACE_O_TRACESYSGOOD.</summary>
    public const int SyscallTrap = 5 | 0x80;

    public static bool Seize(int tid, int options) => Interop.ptrace(PTRACE_SEIZE, tid, 0, options) == 0;

    /// <summary>Leaves a tracee in group-stop but lets the kernel report its next job-control change.</summary>
    public static bool Listen(int tid) => Interop.ptrace(PTRACE_LISTEN, tid, 0, 0) == 0;

    /// <summary>
    /// Stops a running (or blocked) tracee: it reports PTRACE_EVENT_STOP with SIGTRAP, unless another stop comes
    /// first; the request stays armed until the tracee traps. Only for tracees attached with PTRACE_SEIZE.
    /// </summary>
    public static bool Interrupt(int tid) => Interop.ptrace(PTRACE_INTERRUPT, tid, 0, 0) == 0;

    /// <summary>The siginfo of the signal a tracee in a signal-delivery stop is about to receive (128 bytes).</summary>
    public static bool GetSigInfo(int tid, Span<byte> siginfo)
    {
        fixed (byte* p = siginfo)
            return Interop.ptrace(PTRACE_GETSIGINFO, tid, 0, (nint)p) == 0;
    }

    public static bool SetSigInfo(int tid, ReadOnlySpan<byte> siginfo)
    {
        fixed (byte* p = siginfo)
            return Interop.ptrace(PTRACE_SETSIGINFO, tid, 0, (nint)p) == 0;
    }

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

    /// <summary>
    /// PTRACE_GET_SYSCALL_INFO: which kind of syscall stop this is, the ABI, number and arguments (entry,
    /// seccomp) or the result (exit) — without a GETREGS, and without guessing entry from exit.
    /// </summary>
    public static bool GetSyscallInfo(int tid, out SyscallStopInfo info)
    {
        fixed (SyscallStopInfo* p = &info)
            return Interop.ptrace(PTRACE_GET_SYSCALL_INFO, tid, sizeof(SyscallStopInfo), (nint)p) > 0;
    }

    /// <summary>Resumes with request <paramref name="request"/> (PTRACE_SYSCALL, PTRACE_SYSEMU or PTRACE_CONT).</summary>
    public static bool Resume(int tid, long request, int signal) => Interop.ptrace(request, tid, 0, signal) == 0;

    public static long EventMessage(int tid)
    {
        ulong msg = 0;
        Interop.ptrace(PTRACE_GETEVENTMSG, tid, 0, (nint)(&msg));
        return (long)msg;
    }
}
