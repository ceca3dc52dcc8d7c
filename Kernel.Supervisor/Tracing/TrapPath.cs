using UmlMicro.Supervisor.Ptrace;

namespace UmlMicro.Supervisor.Tracing;

/// <summary>
/// How a syscall is caught: the part of the kernel that differs between tt, sysemu and seccomp. The
/// routing above it is the same in every mode (DESIGN.md, "Modes").
/// </summary>
internal enum TrapMode
{
    /// <summary>PTRACE_SYSCALL: two stops per call; an emulated call is nullified into getpid.</summary>
    Tt,
    /// <summary>PTRACE_SYSEMU: one stop per emulated call; the host skips every call, a passed one is re-issued.</summary>
    Sysemu,
    /// <summary>A seccomp filter traps only routed calls; passed calls never stop.</summary>
    Seccomp,
}

internal static class TrapPath
{
    /// <summary>
    /// The SECCOMP_RET_DATA of our filter's RET_TRACE. A guest's own filter may return RET_TRACE too, and the host then
    /// stops the call at the tracer with the guest's data (the newest filter's, when both trace): a seccomp stop with
    /// other data is the guest's, which Linux, with no tracer of the guest's, answers ENOSYS.
    /// </summary>
    public const ushort OurData = 0x554d; // "UM"

    public static TrapMode Parse(string name) => name switch
    {
        "tt" => TrapMode.Tt,
        "sysemu" => TrapMode.Sysemu,
        "seccomp" => TrapMode.Seccomp,
        _ => throw new ArgumentException($"unknown mode '{name}' (tt, sysemu or seccomp)"),
    };

    /// <summary>How a task runs between syscalls the kernel must see.</summary>
    public static long IdleRequest(TrapMode mode) => mode switch
    {
        TrapMode.Tt => PtraceOps.PTRACE_SYSCALL,
        TrapMode.Sysemu => PtraceOps.PTRACE_SYSEMU,
        _ => PtraceOps.PTRACE_CONT,
    };

    public static int Options(TrapMode mode) =>
        PtraceOps.GuestOptions | (mode == TrapMode.Seccomp ? PtraceOps.O_TRACESECCOMP : 0);
}
