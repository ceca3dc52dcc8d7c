using UmlMicro.Contracts.Syscalls;
using UmlMicro.Supervisor.Syscalls;

namespace UmlMicro.Tests.Unit;

public class SyscallTableTests
{
    [Theory]
    [InlineData(0, "read")]
    [InlineData(39, "getpid")]
    [InlineData(59, "execve")]
    [InlineData(257, "openat")]
    [InlineData(435, "clone3")]
    public void Numbers_and_names_are_those_of_x86_64(int nr, string name) =>
        Assert.Equal(name, SyscallTable.Get(nr).Name);

    [Fact]
    public void Unknown_numbers_are_ENOSYS_under_a_generated_name()
    {
        var row = SyscallTable.Get(499);
        Assert.Equal("syscall_499", row.Name);
        Assert.Equal(Disposition.Deny, row.Disposition);
        Assert.Equal(UmlMicro.Contracts.Linux.Errno.ENOSYS, row.DenyErrno);
        Assert.Equal("syscall_-1", SyscallTable.Get(-1).Name);
        Assert.Equal(Disposition.Deny, SyscallTable.Get(134).Disposition); // uselib: a path, not in the table
    }

    [Fact]
    public void Every_call_that_takes_a_path_is_resolved_by_the_vfs_or_denied()
    {
        foreach (var row in SyscallTable.All.Where(r => r.Args.Contains(ArgKind.Path)))
            Assert.True(row.Disposition == Disposition.Deny || (row.Owner == Server.Vfs && row.IsRouted), row.Name);
    }

    [Fact]
    public void Every_call_that_takes_a_pid_is_translated_or_denied()
    {
        // Translated by the supervisor with the grants it keeps (kernel), or asked of Sched.
        foreach (var row in SyscallTable.All.Where(r => r.Args.Contains(ArgKind.Pid)))
            Assert.True(row.Disposition == Disposition.Deny || (row.Owner is Server.Kernel or Server.Sched && row.IsRouted), row.Name);
    }

    [Fact]
    public void Every_call_whose_result_is_a_pid_is_translated()
    {
        foreach (var row in SyscallTable.All.Where(r => r.Ret == RetKind.Pid))
            Assert.True(row.Owner is Server.Kernel or Server.Sched && row.IsRouted, row.Name);
    }

    [Theory]
    [InlineData("open")]
    [InlineData("openat")]
    [InlineData("stat")]
    [InlineData("newfstatat")]
    [InlineData("access")]
    [InlineData("execve")]
    [InlineData("readlink")]
    [InlineData("chdir")]
    [InlineData("getcwd")]
    public void The_vfs_resolves_the_path_calls(string name) =>
        Assert.Equal(Server.Vfs, SyscallTable.Find(name)!.Owner);

    [Theory]
    [InlineData("mount")]
    [InlineData("reboot")]
    [InlineData("kexec_load")]
    [InlineData("init_module")]
    [InlineData("bpf")]
    [InlineData("ptrace")]
    public void Calls_a_guest_may_never_make_are_denied(string name)
    {
        var row = SyscallTable.Find(name)!;
        Assert.Equal(Disposition.Deny, row.Disposition);
        Assert.True(row.DenyErrno > 0);
    }

    [Fact]
    public void The_router_has_a_handler_for_every_emulated_or_rewritten_call()
    {
        var router = new SyscallRouter();
        foreach (var row in SyscallTable.All.Where(r => r.Disposition is Disposition.Emulate or Disposition.Rewrite))
            Assert.NotNull(router.Handler(row.Number));
        Assert.Null(router.Handler(SyscallTable.Find("read")!.Number));
    }
}
