namespace UmlMicro.Tests.Integration;

/// <summary>
/// The first wall (issue 13): what a guest could do to reach past the kernel's routing — an untraced child, a
/// guest seccomp filter that outranks the kernel's trap, the empty-path and ioctl forms that changed host files in
/// the read-only layer, pids carried in fcntl/ioctl/priority calls, AF_UNIX names in sendto/sendmsg — gives the guest
/// what Linux gives it and leaves the host alone. Each fixture (tests/fixtures) runs natively and under umlmicro;
/// the suite runs in every trap mode (tests/run.sh).
/// </summary>
public sealed class FirstWallTests(FixturePrograms fixtures) : IClassFixture<FixturePrograms>, IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void An_untraced_clone_is_traced_like_any_other_child()
    {
        var native = GuestRunner.Native(_dir.Path, fixtures["clone_untraced"]);
        Expect.ExitCode(0, native);
        Assert.Equal(
        [
            "clone(CLONE_UNTRACED|SIGCHLD): child sees its own pid yes, its parent yes, waited yes, exit 7",
            "clone3(CLONE_UNTRACED): child sees its own pid yes, its parent yes, waited yes, exit 7",
            "clone3 left the guest's clone_args alone: yes",
            "clone3(CLONE_UNTRACED, 512-byte struct): child sees its own pid yes, its parent yes, waited yes, exit 7",
            "clone(CLONE_UNTRACED|CLONE_SIGHAND): -1 Invalid argument",
        ], native.StdoutLines);

        // A child the kernel never attached sees its host pid (and its creator is told 0, so it runs the child's
        // code itself): the lines differ.
        var guest = GuestRunner.Run(_dir.Path, ["--max-procs", "2"], fixtures["clone_untraced"]);
        Expect.SameAsNative(native, guest);
    }

    [Fact]
    public void A_guest_seccomp_filter_never_outranks_the_kernels_trap()
    {
        var native = GuestRunner.Native(_dir.Path, fixtures["guest_seccomp"]);
        Expect.ExitCode(0, native);
        // Linux's answers: a RET_TRACE with no tracer is ENOSYS, whether the kernel would pass the call or route it.
        Assert.Equal(
        [
            "bad flags with a listener: -1 Invalid argument",
            "TSYNC with a listener: -1 Invalid argument",
            "empty program with a listener: -1 Invalid argument",
            "filter answering RET_TRACE: ok",
            "getuid: -1 Function not implemented",
            "chdir(\"/\"): -1 Function not implemented",
            "access(\"/\"): ok",
            "getpid: 1",
        ], native.StdoutLines);
        Expect.SameAsNative(native, GuestRunner.Run(_dir.Path, fixtures["guest_seccomp"]));

        // A listener would let a second thread run any call on the host unseen (SECCOMP_USER_NOTIF_FLAG_CONTINUE).
        Assert.Equal("filter with a listener: ok", GuestRunner.Native(_dir.Path, fixtures["guest_seccomp"], "--listener").StdoutLines[^1]);
        var guest = GuestRunner.Run(_dir.Path, fixtures["guest_seccomp"], "--listener");
        Expect.ExitCode(0, guest);
        Assert.Equal("filter with a listener: -1 Device or resource busy", guest.StdoutLines[^1]);
    }
}
