using System.Text.RegularExpressions;

namespace UmlMicro.Tests.Integration;

/// <summary>
/// VFS leases as a user meets them: a path answer the supervisor reuses without asking the VFS is never stale (a
/// program that changes names while another looks them up sees what it would natively), and a VFS that grants no
/// lease is asked every lookup and still answers right. The counts come from --stats: how many lookups were
/// answered from a lease, and how many requests reached the VFS.
/// </summary>
public sealed partial class LeaseTests(FixturePrograms fixtures) : IClassFixture<FixturePrograms>, IDisposable
{
    /// <summary>Enough rounds that every change of lease_race (they cycle by k mod 2, 3 and 4) comes in every
    /// combination once.</summary>
    private const string Rounds = "12";

    private const string NoLeases = "{bin}/Servers.Vfs --no-leases";

    private readonly TempDir _native = new();
    private readonly TempDir _guest = new();

    public void Dispose()
    {
        _native.Dispose();
        _guest.Dispose();
    }

    /// <summary>LOWER for lease_race: the names it changes and looks up. The guest's copy lies outside its cwd, in
    /// the read-only lower layer of its root; the native run changes its own copy for real.</summary>
    private static string MakeLower(TempDir dir)
    {
        dir.Write("L/lf", "lower\n");
        dir.Write("L/ld/child", "child\n");
        dir.Write("L/stable", "stable\n");
        dir.Write("L/c1/same", "lower one\n");
        dir.Write("L/c1/lowonly", "lower lowonly\n");
        dir.Write("L/c2/same", "lower second\n");
        File.CreateSymbolicLink(dir.File("L/ll"), "lf");
        dir.MakeDir("cwd");
        return dir.File("L");
    }

    [Theory]
    [InlineData("tt")]
    [InlineData("sysemu")]
    [InlineData("seccomp")]
    public void Names_changed_by_one_process_look_the_same_as_natively_to_another_that_keeps_looking_them_up(string mode)
    {
        var native = GuestRunner.Native(_native.File("cwd"), fixtures["lease_race"], MakeLower(_native), Rounds);
        Expect.ExitCode(0, native);
        // The truth this test compares with: the names really changed under the resolver, in each way.
        Assert.Contains("  abs L/ld/child: S=E2 L=E2 O=E2 R=E2 A=2", native.StdoutLines);          // mkdir over a whiteout
        Assert.Contains("  abs L/lf: S=f5 L=f5 O='lf 1|' R=E22 A=0", native.StdoutLines);          // made again over a deleted lower file
        Assert.Contains("  rel s_link: S=f3 L=l5 O='BB|' R='tgt_B' A=0", native.StdoutLines);      // a symlink swapped by rename
        Assert.Contains("  fd top r_a: S=f9 L=f9 O='rename 2|' R=E22 A=0", native.StdoutLines);    // a file renamed over another
        Assert.Contains("  cwd lowonly: S=E2 L=E2 O=E2 R=E2 A=2", native.StdoutLines);             // a name only one cwd has
        Assert.Contains("  fd L/c2 lowonly: S=E2 L=E2 O=E2 R=E2 A=2", native.StdoutLines);         // ... and only one dirfd's directory
        Assert.DoesNotContain(native.StdoutLines, l => l.Contains("CHANGED WITHOUT A CHANGE", StringComparison.Ordinal));
        Assert.Equal("resolver exit 0", native.StdoutLines[^1]);

        string lower = MakeLower(_guest);
        var guest = GuestRunner.Run(_guest.File("cwd"), ["--mode", mode, "--stats"], fixtures["lease_race"], lower, Rounds);

        Expect.SameAsNative(native, guest);
        // The resolver's repeated lookups were answered from leases, which each change had to void.
        Assert.True(LeaseAnswers(guest) > 0, $"no lookup was answered from a lease: the test proved nothing about them\n{guest}");
        // The guest changed its lower layer only: the host's files are as they were.
        Assert.Equal("lower\n", File.ReadAllText(Path.Combine(lower, "lf")));
        Assert.Equal("child\n", File.ReadAllText(Path.Combine(lower, "ld/child")));
        Assert.Equal("lf", new FileInfo(Path.Combine(lower, "ll")).LinkTarget);
        Assert.Equal("lower one\n", File.ReadAllText(Path.Combine(lower, "c1/same")));
    }

    [Fact]
    public void A_VFS_that_grants_no_leases_is_asked_every_lookup_and_answers_right()
    {
        const int count = 400;
        string cwd = _guest.MakeDir("cwd");
        string file = _guest.Write("f", "twelve bytes"); // outside the cwd: a file of the lower layer

        var leased = GuestRunner.Run(cwd, ["--stats"], fixtures["stat_loop"], file, $"{count}");
        var asked = GuestRunner.Run(new RunSpec(cwd, fixtures["stat_loop"], [file, $"{count}"])
        {
            Options = ["--stats"],
            Environment = { ["UMLMICRO_Servers__Vfs__Command"] = NoLeases },
        });

        string expected = $"{count} stats, {count} found, size 12\n";
        Expect.Success(expected, asked);
        Assert.Equal(0, LeaseAnswers(asked));
        Assert.True(VfsRoundTrips(asked) >= count, $"fewer VFS round trips than stats without leases\n{asked}");

        Expect.Success(expected, leased);
        Assert.True(LeaseAnswers(leased) > 0, $"no stat was answered from a lease\n{leased}");
        Assert.True(VfsRoundTrips(leased) < count, $"every stat went to the VFS although it grants leases\n{leased}");
    }

    [Fact]
    public void The_lease_race_looks_the_same_with_a_VFS_that_grants_no_leases()
    {
        // The same program with every lookup asked: what the leases are compared with is the VFS's own answer.
        var native = GuestRunner.Native(_native.File("cwd"), fixtures["lease_race"], MakeLower(_native), "4");
        var guest = GuestRunner.Run(new RunSpec(_guest.File("cwd"), fixtures["lease_race"], [MakeLower(_guest), "4"])
        {
            Options = ["--stats"],
            Environment = { ["UMLMICRO_Servers__Vfs__Command"] = NoLeases },
        });

        Expect.SameAsNative(native, guest);
        Assert.Equal(0, LeaseAnswers(guest));
    }

    [Fact]
    public void Listing_a_directory_does_not_void_the_leases()
    {
        const int count = 200;
        string cwd = _guest.MakeDir("cwd");
        string file = _guest.Write("d/f", "x");
        // stat f, then list the directory it is in, COUNT times: nothing changes, so the stats can be leased.
        var r = GuestRunner.Run(cwd, ["--stats"], Tools.Python3, "-c",
            $"import os\nfor i in range({count}):\n    os.stat('{file}'); os.listdir('{Path.GetDirectoryName(file)}')\nprint('ok')");

        Expect.Success("ok\n", r);
        Assert.True(LeaseAnswers(r) >= count / 2, $"listing a directory voided the leases\n{r}");
    }

    private static long LeaseAnswers(RunResult r)
    {
        var m = LeaseLine().Match(r.Stderr);
        Assert.True(m.Success, $"--stats printed no lease count\n{r}");
        return long.Parse(m.Groups[1].Value);
    }

    private static long VfsRoundTrips(RunResult r)
    {
        var m = VfsLine().Match(r.Stderr);
        Assert.True(m.Success, $"--stats printed no VFS round trips\n{r}");
        return long.Parse(m.Groups[1].Value);
    }

    [GeneratedRegex(@"^path lookups answered from a VFS lease: (\d+)$", RegexOptions.Multiline)]
    private static partial Regex LeaseLine();

    [GeneratedRegex(@"^vfs\s+\(round trips\)\s+(\d+)\s", RegexOptions.Multiline)]
    private static partial Regex VfsLine();
}
