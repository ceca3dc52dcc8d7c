using System.Runtime.InteropServices;

namespace UmlMicro.Supervisor.Ptrace;

/// <summary>x86-64 <c>struct user_regs_struct</c>, as PTRACE_GETREGS fills it.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct UserRegs
{
    public ulong R15, R14, R13, R12, Rbp, Rbx, R11, R10, R9, R8, Rax, Rcx, Rdx, Rsi, Rdi, OrigRax,
        Rip, Cs, Eflags, Rsp, Ss, FsBase, GsBase, Ds, Es, Fs, Gs;

    /// <summary>Syscall argument <paramref name="i"/> (0-5) in the kernel's calling convention.</summary>
    public readonly ulong Arg(int i) => i switch
    {
        0 => Rdi, 1 => Rsi, 2 => Rdx, 3 => R10, 4 => R8, 5 => R9,
        _ => throw new ArgumentOutOfRangeException(nameof(i)),
    };

    public void SetArg(int i, ulong value)
    {
        switch (i)
        {
            case 0: Rdi = value; break;
            case 1: Rsi = value; break;
            case 2: Rdx = value; break;
            case 3: R10 = value; break;
            case 4: R8 = value; break;
            case 5: R9 = value; break;
            default: throw new ArgumentOutOfRangeException(nameof(i));
        }
    }
}
