namespace UmlMicro.Tests.Integration;

/// <summary>
/// The guest's own pid namespace on the host (issue 13): the pid the host gives a new task is the one Sched grants,
/// so pids the host writes into data the guest reads (signalfd, siginfo, SCM_CREDENTIALS, ns_last_pid) are the
/// guest's without any translation, and guest pid 1 still dies of a signal it has no handler for, as a process does
/// natively (a namespace's real init would be spared it).
/// </summary>
public sealed class PidNamespaceTests(FixturePrograms fixtures) : IClassFixture<FixturePrograms>, IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Pids_the_host_writes_into_data_are_the_guests()
    {
        var native = GuestRunner.Native(_dir.Path, fixtures["pid_data"]);
        Assert.Equal(
        [
            "signalfd: ssi_pid is the child: yes",
            "sigwaitinfo: si_pid is the child: yes",
            "SCM_CREDENTIALS: pid is the child: yes",
        ], native.StdoutLines);
        Expect.SameAsNative(native, GuestRunner.Run(_dir.Path, fixtures["pid_data"]));
    }

    [Fact]
    public void Ns_last_pid_is_the_last_pid_the_guest_was_given()
    {
        // read is a shell builtin: nothing is forked between the background job and the read.
        var guest = GuestRunner.Run(_dir.Path, "sh", "-c", "true & echo $!; wait; read last < /proc/sys/kernel/ns_last_pid; echo $last");
        Expect.ExitCode(0, guest);
        Assert.Equal(2, guest.StdoutLines.Length);
        Assert.Equal(guest.StdoutLines[0], guest.StdoutLines[1]);
    }

    [Fact]
    public void Guest_pid_1_dies_of_a_signal_it_does_not_handle()
    {
        var native = GuestRunner.Native(_dir.Path, "sh", "-c", "echo $$ >/dev/null; kill -TERM $$; echo survived");
        Expect.ExitCode(143, native);
        var guest = GuestRunner.Run(_dir.Path, "sh", "-c", "echo $$; kill -TERM $$; echo survived");
        Expect.ExitCode(143, guest);
        Assert.Equal(["1"], guest.StdoutLines);
    }
}
