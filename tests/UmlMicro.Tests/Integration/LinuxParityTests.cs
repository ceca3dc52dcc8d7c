namespace UmlMicro.Tests.Integration;

/// <summary>
/// General gaps the Linux Test Project's syscall tests showed (bench/LTP.md): each fixture runs natively and as a guest,
/// and the two must print the same lines. The fixture's own lines are asserted natively first, so that a test can
/// only pass when the behaviour it compares is really provoked.
/// </summary>
public sealed class LinuxParityTests(FixturePrograms fixtures) : IClassFixture<FixturePrograms>, IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private void SameAsNative(string fixture, params string[] nativeTruth)
    {
        using var nativeDir = new TempDir();
        var native = GuestRunner.Native(nativeDir.Path, fixtures[fixture]);
        Expect.ExitCode(0, native);
        foreach (var line in nativeTruth) Assert.Contains(line, native.StdoutLines);
        var guest = GuestRunner.Run(_dir.Path, fixtures[fixture]);
        Expect.SameAsNative(native, guest);
    }

    [Fact]
    public void A_name_looked_up_in_a_removed_directory_is_ENOENT()
    {
        SameAsNative("removed_dir", "fstatat name: ENOENT", "linkat into: ENOENT", "linkat from: ENOENT",
            "symlinkat: ENOENT", "openat O_CREAT: ENOENT", "absolute path: ok", "file still there: ok");
    }

    [Fact]
    public void Orphans_go_to_a_child_subreaper_as_the_host_reparents_them()
    {
        SameAsNative("subreaper", "grandchild's parent is the subreaper: yes", "subreaper reaped the grandchild: yes",
            "great-grandchild's parent is the subreaper: yes", "after clearing it, the orphan's parent is the subreaper: no");
    }
}
