using UmlMicro.Contracts.Syscalls;
using UmlMicro.Supervisor.Ptrace;

namespace UmlMicro.Supervisor.Tracing;

/// <summary>
/// The classic-BPF program the launcher installs in seccomp mode, generated from <see cref="SyscallTable"/>:
/// every routed syscall (emulated, rewritten or denied) returns SECCOMP_RET_TRACE and stops at the tracer;
/// everything else is allowed and never stops. Other ABIs (int 0x80, x32) are trapped too, so a guest
/// cannot slip a call past the routing by changing calling convention.
/// </summary>
internal static class SeccompFilter
{
    public const uint RetAllow = 0x7fff0000, RetTrace = 0x7ff00000;
    public const ushort LdAbsW = 0x20, JeqK = 0x15, JgeK = 0x35, RetK = 0x06;
    public const uint X32Bit = 0x40000000;

    /// <summary>One sock_filter instruction.</summary>
    public readonly record struct Insn(ushort Code, byte Jt, byte Jf, uint K);

    /// <param name="everything">Trap every call (for --trace and --stats, which must see passed calls too).</param>
    public static Insn[] Build(bool everything = false) =>
        everything ? [new Insn(RetK, 0, 0, RetTrace)] : Build(SyscallTable.All.Where(r => r.IsRouted).Select(r => r.Number));

    public static Insn[] Build(IEnumerable<int> trapped)
    {
        var nrs = trapped.Distinct().Order().ToArray();
        if (nrs.Length > 250) throw new InvalidOperationException("too many routed syscalls for a linear filter");
        var p = new List<Insn>
        {
            new(LdAbsW, 0, 0, 4),                          // seccomp_data.arch
            new(JeqK, 1, 0, SyscallStopInfo.ArchX86_64),
            new(RetK, 0, 0, RetTrace),
            new(LdAbsW, 0, 0, 0),                          // seccomp_data.nr
            new(JgeK, 0, 1, X32Bit),
            new(RetK, 0, 0, RetTrace),
        };
        for (int i = 0; i < nrs.Length; i++)
            p.Add(new Insn(JeqK, (byte)(nrs.Length - i), 0, (uint)nrs[i])); // jump to the final RET_TRACE
        p.Add(new Insn(RetK, 0, 0, RetAllow));
        p.Add(new Insn(RetK, 0, 0, RetTrace));
        return [.. p];
    }

    /// <summary>The program as hex bytes (struct sock_filter, little endian), for the launcher's command line.</summary>
    public static string ToHex(Insn[] program)
    {
        var bytes = new byte[program.Length * 8];
        for (int i = 0; i < program.Length; i++)
        {
            var span = bytes.AsSpan(i * 8);
            BitConverter.TryWriteBytes(span, program[i].Code);
            span[2] = program[i].Jt;
            span[3] = program[i].Jf;
            BitConverter.TryWriteBytes(span[4..], program[i].K);
        }
        return Convert.ToHexString(bytes);
    }
}
