using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading.Tasks;
namespace UmlMicro.Contracts.Syscalls;

/// <summary>How an argument is decoded for the trace and which translations it needs.</summary>
public enum ArgKind : byte
{
    /// <summary>Signed integer.</summary>
    Int,
    /// <summary>Opaque word shown in hex.</summary>
    Hex,
    Fd,
    /// <summary>A directory fd of an *at() call: AT_FDCWD is shown by name.</summary>
    DirFd,
    /// <summary>Pointer to a NUL-terminated guest path.</summary>
    Path,
    /// <summary>Pointer to a NUL-terminated string that is not a path.</summary>
    Str,
    /// <summary>Pointer to a NULL-terminated array of string pointers (argv, envp).</summary>
    StrArray,
    /// <summary>Pointer to data the guest hands in; its length is the next Size argument.</summary>
    InBuf,
    /// <summary>Pointer to memory the kernel fills.</summary>
    OutBuf,
    Size,
    Ptr,
    Flags,
    Mode,
    /// <summary>A guest (virtual) pid or tid: translated to the host pid before the host sees it.
    /// 0 stays 0 (self); a negative value names a process group.</summary>
    Pid,
    Signal,
}

/// <summary>How the result register is read.</summary>
public enum RetKind : byte
{
    Int,
    Ptr,
    /// <summary>A host pid the guest must see as its virtual pid.</summary>
    Pid,
    /// <summary>The call does not return (exit, a successful execve).</summary>
    None,
}

/// <summary>The kernel subsystem that owns a syscall.</summary>
public enum Server : byte
{
    /// <summary>Decided by the supervisor itself, from its configuration.</summary>
    Kernel,
    Vfs,
    Mm,
    Sched,
}

/// <summary>What the supervisor does with a syscall (see DESIGN.md, "The syscall path").</summary>
public enum Disposition : byte
{
    /// <summary>The host runs it as is.</summary>
    Pass,
    /// <summary>The owner computes the result; the host never runs the call.</summary>
    Emulate,
    /// <summary>The owner may change the arguments; the host runs the call; the owner may see or change the result.</summary>
    Rewrite,
    /// <summary>Refused with a fixed errno and logged.</summary>
    Deny,
}

/// <summary>One row of the syscall table.</summary>
public sealed record SyscallInfo(int Number, string Name, ArgKind[] Args)
{
    public Server Owner { get; init; } = Server.Kernel;
    public Disposition Disposition { get; init; } = Disposition.Pass;
    public RetKind Ret { get; init; } = RetKind.Int;
    /// <summary>For <see cref="Disposition.Deny"/>: the errno the guest gets.</summary>
    public int DenyErrno { get; init; }

    /// <summary>True when the supervisor must stop the guest at this call (everything that is not a plain pass).</summary>
    public bool IsRouted => Disposition != Disposition.Pass;

    /// <summary>Routed only to be observed for --stats, which traps every call anyway: the seccomp filter lets it
    /// pass when nothing is observed (the handler must change nothing the guest sees).</summary>
    public bool StatsOnly { get; init; }

    public SyscallInfo Emulate(Server owner) => this with { Owner = owner, Disposition = Disposition.Emulate };
    public SyscallInfo Rewrite(Server owner) => this with { Owner = owner, Disposition = Disposition.Rewrite };
    public SyscallInfo Deny(int errno) => this with { Disposition = Disposition.Deny, DenyErrno = errno };
    public SyscallInfo Returns(RetKind ret) => this with { Ret = ret };
    public SyscallInfo ForStats() => this with { StatsOnly = true };
}
