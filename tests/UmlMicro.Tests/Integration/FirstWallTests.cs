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
}
