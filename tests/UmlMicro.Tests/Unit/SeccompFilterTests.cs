using UmlMicro.Contracts.Syscalls;
using UmlMicro.Supervisor.Ptrace;
using UmlMicro.Supervisor.Tracing;
using static UmlMicro.Supervisor.Tracing.SeccompFilter;

namespace UmlMicro.Tests.Unit;

/// <summary>The seccomp filter, run in a small classic-BPF interpreter over every syscall number.</summary>
public class SeccompFilterTests
{
    /// <summary>Evaluates the program on seccomp_data { nr, arch } as the kernel would.</summary>
    private static uint Run(Insn[] program, int nr, uint arch)
    {
        uint acc = 0;
        for (int pc = 0; pc < program.Length; pc++)
        {
            var i = program[pc];
            switch (i.Code)
            {
                case LdAbsW:
                    acc = i.K switch { 0 => (uint)nr, 4 => arch, _ => throw new InvalidOperationException($"load at {i.K}") };
                    break;
                case JeqK:
                    pc += acc == i.K ? i.Jt : i.Jf;
                    break;
                case JgeK:
                    pc += acc >= i.K ? i.Jt : i.Jf;
                    break;
                case Ja:
                    pc += (int)i.K;
                    break;
                case RetK:
                    return i.K;
                default:
                    throw new InvalidOperationException($"opcode {i.Code:x}");
            }
        }
        throw new InvalidOperationException("fell off the end of the program");
    }

    [Fact]
    public void Every_routed_call_stops_at_the_tracer_and_every_passed_call_runs_untouched()
    {
        var program = Build();
        for (int nr = 0; nr < SyscallTable.Capacity; nr++)
        {
            var row = SyscallTable.Get(nr);
            uint expected = row.IsRouted && !row.StatsOnly ? RetTrace : RetAllow;
            Assert.True(expected == Run(program, nr, SyscallStopInfo.ArchX86_64), $"{row.Name} ({nr})");
        }
        Assert.Equal(RetAllow, Run(program, 231 /* exit_group: observed only for --stats */, SyscallStopInfo.ArchX86_64));
    }

    [Fact]
    public void Observing_traps_every_call()
    {
        var program = Build(everything: true);
        for (int nr = 0; nr < SyscallTable.Capacity; nr++)
            Assert.Equal(RetTrace, Run(program, nr, SyscallStopInfo.ArchX86_64));
    }

    [Fact]
    public void The_hosts_deny_layer_refuses_every_denied_call_with_the_tables_errno_and_allows_everything_else()
    {
        var program = BuildDenyLayer();
        for (int nr = 0; nr < SyscallTable.Capacity; nr++)
        {
            var row = SyscallTable.Get(nr);
            uint expected = row.Disposition == Disposition.Deny ? RetErrno | (uint)row.DenyErrno : RetAllow;
            Assert.True(expected == Run(program, nr, SyscallStopInfo.ArchX86_64), $"{row.Name} ({nr})");
        }
        Assert.Equal(RetErrno | 1u, Run(program, 165 /* mount */, SyscallStopInfo.ArchX86_64));
        Assert.Equal(RetErrno | 38u, Run(program, 37 /* i386 kill */, 0x40000003));
        Assert.Equal(RetErrno | 38u, Run(program, (int)(X32Bit | 62), SyscallStopInfo.ArchX86_64));
        Assert.Equal(RetAllow, Run(program, 0 /* read */, SyscallStopInfo.ArchX86_64));
    }

    [Fact]
    public void Other_abis_cannot_slip_past_the_routing()
    {
        var program = Build();
        const uint I386 = 0x40000003;
        Assert.Equal(RetTrace, Run(program, 37 /* i386 kill */, I386));
        Assert.Equal(RetTrace, Run(program, (int)(X32Bit | 62), SyscallStopInfo.ArchX86_64));
    }

    [Fact]
    public void The_program_is_encoded_as_struct_sock_filter()
    {
        var hex = ToHex([new Insn(RetK, 1, 2, RetAllow)]);
        Assert.Equal("060001020000FF7F", hex);
    }

    [Fact]
    public void Observing_every_call_traps_every_call()
    {
        var program = Build(everything: true);
        for (int nr = 0; nr < SyscallTable.Capacity; nr++)
            Assert.Equal(RetTrace, Run(program, nr, SyscallStopInfo.ArchX86_64));
    }
}
