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
    public void Thousands_of_System_V_segments_are_made_and_removed_in_time_and_every_charge_is_given_back()
    {
        // Not run natively: there it would share the host's IPC namespace (and its limit of 4,096 segments) with
        // whatever else runs. LTP's limit for a test is 30 s; natively this takes a tenth of a second (the kernel read
        // the host's whole table per call: minutes).
        var guest = GuestRunner.Run(_dir.Path, ["--mem", "256M", "--stats", "--timeout", "30s"], fixtures["shm_many"]);
        Expect.Success("made 4096, of the size asked 4096, removed 4096\n", guest);
        var memory = System.Text.RegularExpressions.Regex.Match(guest.Stderr, @"memory \(KiB\): committed (\d+), peak (\d+)");
        Assert.True(memory.Success, guest.ToString());
        Assert.True(long.Parse(memory.Groups[2].Value) >= 4096 * 8, $"every segment was charged (two pages each)\n{guest}");
        Assert.True(long.Parse(memory.Groups[1].Value) < 4096, $"every charge was given back\n{guest}");
    }

    [Fact]
    public void Orphans_go_to_a_child_subreaper_as_the_host_reparents_them()
    {
        SameAsNative("subreaper", "grandchild's parent is the subreaper: yes", "subreaper reaped the grandchild: yes",
            "great-grandchild's parent is the subreaper: yes", "after clearing it, the orphan's parent is the subreaper: no");
    }
}
