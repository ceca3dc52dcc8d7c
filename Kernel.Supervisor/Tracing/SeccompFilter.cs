using UmlMicro.Contracts.Syscalls;
using UmlMicro.Supervisor.Ptrace;

namespace UmlMicro.Supervisor.Tracing;

/// <summary>
/// The classic-BPF program the launcher installs in seccomp mode, generated from <see cref="SyscallTable"/>:
/// every routed syscall (emulated, rewritten or denied; one routed only for --stats only when observing), and every number the table does not know (ENOSYS),
/// returns SECCOMP_RET_TRACE and stops at the tracer; everything else is allowed and never stops. Other ABIs (int 0x80, x32) are trapped too, so a guest
/// cannot slip a call past the routing by changing calling convention.
/// </summary>
internal static class SeccompFilter
{
    public const uint RetAllow = 0x7fff0000, RetTrace = 0x7ff00000 | TrapPath.OurData, RetErrno = 0x00050000;
    public const ushort LdAbsW = 0x20, JeqK = 0x15, JgeK = 0x35, Ja = 0x05, RetK = 0x06;
    public const uint X32Bit = 0x40000000;

    /// <summary>One sock_filter instruction.</summary>
    public readonly record struct Insn(ushort Code, byte Jt, byte Jf, uint K);

    /// <param name="everything">Trap every call (for --trace and --stats, which must see passed calls too).</param>
    public static Insn[] Build(bool everything = false) =>
        everything ? [new Insn(RetK, 0, 0, RetTrace)] : Build(Enumerable.Range(0, SyscallTable.Limit).Where(n => SyscallTable.Get(n) is { IsRouted: true, StatsOnly: false }), SyscallTable.Limit);

    /// <param name="trapped">Numbers below <paramref name="limit"/> that stop; every number from limit on stops too.</param>
    public static Insn[] Build(IEnumerable<int> trapped, int limit)
    {
        var traps = trapped.Where(n => n >= 0 && n < limit).ToHashSet();
        return Build(n => traps.Contains(n) ? RetTrace : RetAllow, limit, RetTrace, RetTrace);
    }

    /// <summary>
    /// The host's own wall (README "Security"), installed in every mode before the guest's first instruction: every
    /// call the table denies fails with the row's errno in the host itself (SECCOMP_RET_ERRNO), whether or not the
    /// routing saw it; so do numbers the table does not know and other ABIs (ENOSYS). Everything else is allowed:
    /// the routing above decides it. An errno outranks a trap, so in seccomp mode a denied call never stops.
    /// </summary>
    public static Insn[] BuildDenyLayer()
    {
        uint Errno(int e) => RetErrno | (uint)e;
        return Build(n => SyscallTable.Get(n) is { Disposition: Disposition.Deny } row ? Errno(row.DenyErrno) : RetAllow,
            SyscallTable.Limit, Errno(UmlMicro.Contracts.Linux.Errno.ENOSYS), Errno(UmlMicro.Contracts.Linux.Errno.ENOSYS));
    }

    /// <param name="verdict">The action for each number below <paramref name="limit"/>.</param>
    /// <param name="beyond">The action for every number from <paramref name="limit"/> on (x32 numbers among them).</param>
    /// <param name="otherArch">The action for a call of another ABI (int 0x80).</param>
    /// <remarks>The numbers are split into runs with one verdict each, and the program finds the run of a call by
    /// binary search (a dozen comparisons for any call), not by a linear scan of every number.</remarks>
    private static Insn[] Build(Func<int, uint> verdict, int limit, uint beyond, uint otherArch)
    {
        // Runs: (first number, verdict) in order, covering 0 .. 2^32-1; the last run starts at limit.
        var runs = new List<(uint Start, uint Verdict)>();
        for (int n = 0; n < limit; n++)
            if (runs.Count == 0 || runs[^1].Verdict != verdict(n)) runs.Add(((uint)n, verdict(n)));
        if (runs[^1].Verdict != beyond) runs.Add(((uint)limit, beyond));
        var p = new List<Insn>
        {
            new(LdAbsW, 0, 0, 4),                          // seccomp_data.arch
            new(JeqK, 1, 0, SyscallStopInfo.ArchX86_64),
            new(RetK, 0, 0, otherArch),
            new(LdAbsW, 0, 0, 0),                          // seccomp_data.nr; x32 numbers are above any limit
        };
        Emit(p, runs, 0, runs.Count);
        return [.. p];
    }

    /// <summary>Code that returns the verdict of runs[from..to) for a number known to lie in them.</summary>
    private static void Emit(List<Insn> p, List<(uint Start, uint Verdict)> runs, int from, int to)
    {
        if (to - from == 1)
        {
            p.Add(new Insn(RetK, 0, 0, runs[from].Verdict));
            return;
        }
        int mid = (from + to) / 2;
        // nr >= runs[mid].Start: on to the JA that reaches the upper half; else skip it into the lower half.
        p.Add(new Insn(JgeK, 0, 1, runs[mid].Start));
        int ja = p.Count;
        p.Add(new Insn(Ja, 0, 0, 0));
        Emit(p, runs, from, mid);
        p[ja] = new Insn(Ja, 0, 0, (uint)(p.Count - ja - 1));
        Emit(p, runs, mid, to);
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
