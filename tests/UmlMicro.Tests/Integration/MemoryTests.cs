using System.Text.RegularExpressions;

namespace UmlMicro.Tests.Integration;

/// <summary>The MM server at work: the commit limit (--mem), the map kept exact, a deterministic layout, statistics.</summary>
public sealed class MemoryTests(FixturePrograms fixtures) : IClassFixture<FixturePrograms>, IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Python_raises_MemoryError_beyond_the_limit_and_not_within_it()
    {
        const string script = "x = bytearray(600 * 1024 * 1024); print(len(x))";

        var limited = GuestRunner.Run(_dir.Path, ["--mem", "256M"], "python3", "-c", script);
        var roomy = GuestRunner.Run(_dir.Path, ["--mem", "1G"], "python3", "-c", script);

        Assert.True(limited.ExitCode != 0 && limited.Stderr.Contains("MemoryError"), $"expected a MemoryError\n{limited}");
        Expect.Success("629145600\n", roomy);
    }

    [Fact]
    public void Every_call_beyond_the_limit_fails_with_enomem_and_what_linux_does_not_count_is_given()
    {
        var native = GuestRunner.Native(_dir.Path, fixtures["mm_limit"]);
        var guest = GuestRunner.Run(_dir.Path, ["--mem", "64M"], fixtures["mm_limit"]);

        Assert.Contains(": no\n", native.Stdout); // without a limit the host gives all of it: the steps can fail
        Expect.ExitCode(0, guest);
        Assert.True(guest.StdoutLines.Length == 13 && guest.StdoutLines.All(l => l.EndsWith(": yes")), $"every step as under a limit\n{guest}");
    }

    [Fact]
    public void A_system_v_segment_is_committed_from_its_shmget_until_it_is_destroyed()
    {
        var guest = GuestRunner.Run(_dir.Path, ["--mem", "64M", "--stats"], fixtures["mm_shm_limit"]);

        Expect.ExitCode(0, guest);
        Assert.True(guest.StdoutLines.Length == 15 && guest.StdoutLines.All(l => l.EndsWith(": yes")), $"every step as Linux charges segments\n{guest}");
        Assert.Matches(@"memory \(KiB\): committed \d+, peak \d+, limit 65536", guest.Stderr);
        // Natively, without a limit, the same errnos where Linux decides before it charges (EINVAL, EEXIST).
        var native = GuestRunner.Native(_dir.Path, fixtures["mm_shm_limit"]);
        foreach (var line in native.StdoutLines.Where(l => l.Contains("EINVAL") || l.Contains("EEXIST") || l.Contains("without a charge")))
            Assert.Contains(line, guest.StdoutLines);
    }

    [Fact]
    public void Madvise_dontfork_areas_are_left_out_of_a_forked_childs_map_and_charge_and_wipeonfork_ones_are_emptied()
    {
        var spec = new RunSpec(_dir.Path, fixtures["mm_dontfork"], []) { Environment = new() { ["UMLMICRO_Mm__CheckMaps"] = "true" } };

        var guest = GuestRunner.Run(spec);
        var limited = GuestRunner.Run(_dir.Path, ["--mem", "64M"], fixtures["mm_dontfork"]);

        Expect.SameAsNative(GuestRunner.Native(_dir.Path, fixtures["mm_dontfork"]), guest);
        Assert.Contains(" 0 differed", guest.Stderr); // the children's maps too: each makes a memory call
        // 40 MiB touched and advised MADV_DONTFORK beside a 64 MiB limit: the fork fits only if they are not copied.
        Assert.True(limited.ExitCode == 0 && limited.StdoutLines.All(l => l.EndsWith(": yes")), $"every step under the limit\n{limited}");
    }

    [Fact]
    public void A_fork_whose_copy_would_pass_the_limit_fails_with_enomem_and_one_that_fits_succeeds()
    {
        var tight = GuestRunner.Run(_dir.Path, ["--mem", "64M"], fixtures["mm_fork_limit"]);
        var roomy = GuestRunner.Run(_dir.Path, ["--mem", "128M"], fixtures["mm_fork_limit"]);

        Expect.ExitCode(1, tight);
        Assert.Equal("fork: Cannot allocate memory\n", tight.Stdout);
        Expect.Success("fork ok\n", roomy);
    }

    [Fact]
    public void The_mm_map_agrees_with_the_hosts_after_every_kind_of_memory_call()
    {
        var spec = new RunSpec(_dir.Path, fixtures["mm_maps"], []) { Environment = new() { ["UMLMICRO_Mm__CheckMaps"] = "true" } };

        var guest = GuestRunner.Run(spec);

        Expect.SameAsNative(GuestRunner.Native(_dir.Path, fixtures["mm_maps"]), guest);
        var summary = Regex.Match(guest.Stderr, @"mm check: (\d+) maps compared with the host's, (\d+) differed");
        Assert.True(summary.Success && int.Parse(summary.Groups[1].Value) >= 40 && summary.Groups[2].Value == "0", $"expected no difference\n{guest}");
    }

    [Fact]
    public void Brk_behaves_as_linuxs_with_the_heap_where_mm_put_it()
    {
        var spec = new RunSpec(_dir.Path, fixtures["mm_brk"], []) { Environment = new() { ["UMLMICRO_Mm__CheckMaps"] = "true" } };

        var guest = GuestRunner.Run(spec);

        // brk(0), refusals below the start and past the top, growth, shrink, the page kept free below the next mapping,
        // threads, fork, malloc: the same answers as natively; the host's map agrees with MM's after every change.
        Expect.SameAsNative(GuestRunner.Native(_dir.Path, fixtures["mm_brk"]), guest);
        Assert.DoesNotContain(": no\n", guest.Stdout);
        Assert.Contains(" 0 differed", guest.Stderr);
    }

    [Fact]
    public void The_heap_starts_where_mm_puts_it_the_same_in_every_deterministic_run_and_randomised_by_default()
    {
        const string script = "import re; print(re.search(r'^([0-9a-f]+)-.*\\[heap\\]$', open('/proc/self/maps').read(), re.M).group(1))";
        var first = GuestRunner.Run(_dir.Path, ["--deterministic-layout"], "python3", "-c", script);
        var second = GuestRunner.Run(_dir.Path, ["--deterministic-layout"], "python3", "-c", script);
        var random = Enumerable.Range(0, 3).Select(_ => GuestRunner.Run(_dir.Path, "python3", "-c", script)).ToList();

        Expect.ExitCode(0, first);
        Expect.Stdout(first.Stdout, second);
        // Randomised over 2^18 pages: three runs that all draw the same start would be a broken draw.
        Assert.True(random.All(r => r.ExitCode == 0) && random.Select(r => r.Stdout).Distinct().Count() > 1, string.Join("\n", random));
    }

    [Fact]
    public void Proc_maps_and_smaps_rollup_are_made_from_the_mm_map_in_linuxs_format_with_guest_paths()
    {
        var spec = new RunSpec(_dir.Path, fixtures["mm_procmaps"], []) { Environment = new() { ["UMLMICRO_Mm__CheckMaps"] = "true" } };

        var guest = GuestRunner.Run(spec);

        // Files, a split private file mapping, shared anonymous memory, a memfd, an unlinked file and a System V
        // segment: the same lines, device and inode kinds, name column and names as natively.
        Expect.SameAsNative(GuestRunner.Native(_dir.Path, fixtures["mm_procmaps"]), guest);
        Assert.Contains("[" + Path.Combine(_dir.Path, "procmaps.1") + " (deleted)]", guest.Stdout);
        Assert.Contains(" 0 differed", guest.Stderr);
    }

    [Fact]
    public void Proc_maps_shows_guest_paths_under_a_root_not_the_hosts()
    {
        using var data = new TempDir();
        var result = GuestRunner.Run(_dir.Path, ["--bind", $"{data.Path}:/data"], "sh", "-c",
            "cd /data && cp /bin/true t && python3 -c \"import mmap;f=open('/data/t','rb');m=mmap.mmap(f.fileno(),0,prot=mmap.PROT_READ);print(open('/proc/self/maps').read())\"");

        Expect.ExitCode(0, result);
        Assert.Contains(" /data/t\n", result.Stdout);
        Assert.DoesNotContain(data.Path, result.Stdout);
        Assert.Contains("[heap]", result.Stdout);
    }

    [Fact]
    public void A_deterministic_layout_gives_the_same_addresses_in_every_run_and_the_default_does_not()
    {
        var first = GuestRunner.Run(_dir.Path, ["--deterministic-layout"], "cat", "/proc/self/maps");
        var second = GuestRunner.Run(_dir.Path, ["--deterministic-layout"], "cat", "/proc/self/maps");
        var random = GuestRunner.Run(_dir.Path, "cat", "/proc/self/maps");

        Expect.ExitCode(0, first);
        Assert.Contains("[heap]", first.Stdout);
        Assert.Contains("[stack]", first.Stdout);
        Expect.Stdout(first.Stdout, second);
        Assert.NotEqual(Regex.Match(first.Stdout, @".*\[stack\]").Value, Regex.Match(random.Stdout, @".*\[stack\]").Value);
    }

    [Fact]
    public void Stats_show_committed_and_resident_memory_and_each_processs_peaks()
    {
        // 100 MiB written to (b'a' * n fills it), then given back before the exit: resident at the peak, not at exit.
        var guest = GuestRunner.Run(_dir.Path, ["--stats", "--mem", "512M"], "python3", "-c", "x = b'a' * (100 * 1024 * 1024); del x");

        Expect.ExitCode(0, guest);
        var total = Regex.Match(guest.Stderr, @"memory \(KiB\): committed \d+, peak (\d+), limit 524288");
        Assert.True(total.Success && long.Parse(total.Groups[1].Value) >= 100 * 1024, $"a peak of at least 100 MiB\n{guest}");
        var pid1 = Regex.Match(guest.Stderr, @"\n +1 +\d+ +(\d+) +\d+ +(\d+) +(\d+) +(\d+)\n");
        Assert.True(pid1.Success && long.Parse(pid1.Groups[2].Value) >= 100 * 1024, $"pid 1 committed 100 MiB at its peak\n{guest}");
        long rssAtExit = long.Parse(pid1.Groups[3].Value), peakRss = long.Parse(pid1.Groups[4].Value);
        Assert.True(peakRss >= 100 * 1024 && rssAtExit < peakRss - 50 * 1024, $"pid 1 was resident with 100 MiB at its peak, not at its exit\n{guest}");
    }

    [Theory]
    [InlineData("--mem", "lots")]
    [InlineData("--mem", "1.5G")]
    public void A_bad_memory_size_is_a_usage_error(string option, string value)
    {
        var line = Expect.UsageError(GuestRunner.Supervise(_dir.Path, "run", option, value, "--", "true"));
        Assert.Contains("--mem", line);
    }
}
