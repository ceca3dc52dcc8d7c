using System.Globalization;
using System.Text.Json;

namespace UmlMicro.Tests.Integration;

/// <summary>--trace FILE and --stats: what a user reads to see and steer every syscall.</summary>
public sealed class TraceTests(FixturePrograms fixtures) : IClassFixture<FixturePrograms>, IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static readonly string[] Dispositions = ["pass", "emulate", "rewrite", "deny"];

    /// <summary>Runs the guest with --trace and returns the run and every trace record.</summary>
    private (RunResult Run, List<JsonElement> Records) Traced(string program, params string[] args)
    {
        var trace = _dir.File("trace.jsonl");
        var r = GuestRunner.Run(_dir.Path, ["--trace", trace], program, args);
        Assert.True(File.Exists(trace), $"no trace file written\n{r}");
        var records = new List<JsonElement>();
        var lines = File.ReadAllLines(trace);
        for (var i = 0; i < lines.Length; i++)
        {
            try
            {
                using var doc = JsonDocument.Parse(lines[i]);
                Assert.True(doc.RootElement.ValueKind == JsonValueKind.Object, $"trace line {i + 1} is not a JSON object: {lines[i]}");
                records.Add(doc.RootElement.Clone());
            }
            catch (JsonException e)
            {
                Assert.Fail($"trace line {i + 1} is not JSON ({e.Message}): {lines[i]}");
            }
        }
        return (r, records);
    }

    private static string Show(JsonElement e) => e.GetRawText();

    [Fact]
    public void Every_trace_line_is_a_json_object_with_the_documented_fields()
    {
        var known = _dir.Write("known.txt", "x\n");
        var (r, records) = Traced(fixtures["trace_probe"], known);
        Expect.Success("pid 1 ppid 0\n", r);
        Assert.True(records.Count > 20, $"only {records.Count} trace records");
        double lastT = 0;
        foreach (var rec in records)
        {
            foreach (var field in new[] { "t", "pid", "tid", "name", "args", "disp", "server", "result", "us" })
                Assert.True(rec.TryGetProperty(field, out _), $"no '{field}' in {Show(rec)}");
            Assert.True(rec.GetProperty("t").ValueKind == JsonValueKind.Number, Show(rec));
            var t = rec.GetProperty("t").GetDouble();
            Assert.True(t >= 0, Show(rec));
            lastT = Math.Max(lastT, t);
            Assert.True(rec.GetProperty("pid").TryGetInt32(out var pid) && pid >= 1, Show(rec));
            Assert.True(rec.GetProperty("tid").TryGetInt32(out var tid) && tid >= 1, Show(rec));
            Assert.True(rec.GetProperty("name").ValueKind == JsonValueKind.String && rec.GetProperty("name").GetString()!.Length > 0, Show(rec));
            Assert.True(rec.GetProperty("args").ValueKind == JsonValueKind.Array, Show(rec));
            Assert.Contains(rec.GetProperty("disp").GetString(), Dispositions);
            Assert.True(rec.GetProperty("server").ValueKind == JsonValueKind.String, Show(rec));
            Assert.True(rec.GetProperty("us").ValueKind == JsonValueKind.Number && rec.GetProperty("us").GetDouble() >= 0, Show(rec));
        }
        // One guest process, one thread: pid and tid are the virtual 1.
        Assert.All(records, rec => Assert.True(rec.GetProperty("pid").GetInt32() == 1 && rec.GetProperty("tid").GetInt32() == 1, Show(rec)));
        Assert.Contains(records, rec => rec.GetProperty("name").GetString() == "execve");
        Assert.Contains(records, rec => rec.GetProperty("name").GetString() == "exit_group");
    }

    [Fact]
    public void An_openat_of_a_known_path_shows_the_path_rewritten_by_vfs()
    {
        var known = _dir.Write("known.txt", "x\n");
        var (r, records) = Traced(fixtures["trace_probe"], known);
        Expect.ExitCode(0, r);
        var open = records.Where(rec => rec.GetProperty("name").GetString() == "openat" &&
                                        rec.GetProperty("args").EnumerateArray().Any(a => a.ValueKind == JsonValueKind.String && a.GetString() == known))
                          .ToList();
        Assert.True(open.Count == 1, $"expected one openat of {known} in the trace, found {open.Count}");
        var rec = open[0];
        Assert.Equal("rewrite", rec.GetProperty("disp").GetString());
        Assert.Equal("vfs", rec.GetProperty("server").GetString());
        Assert.Equal("AT_FDCWD", rec.GetProperty("args")[0].GetString());
        Assert.True(rec.GetProperty("result").TryGetInt32(out var fd) && fd >= 3, Show(rec));
        Assert.False(rec.TryGetProperty("errno", out _), Show(rec));
    }

    [Fact]
    public void A_failed_call_shows_its_errno()
    {
        var known = _dir.Write("known.txt", "x\n");
        var (_, records) = Traced(fixtures["trace_probe"], known);
        var missing = records.Single(rec => rec.GetProperty("name").GetString() == "openat" &&
                                            rec.GetProperty("args")[1].GetString() == known + ".missing");
        Assert.True(missing.TryGetProperty("errno", out var errno) && errno.GetInt32() == 2, $"no errno 2 (ENOENT) in {Show(missing)}");
    }

    [Fact]
    public void Getpid_is_emulated_by_sched_with_the_virtual_pid()
    {
        var known = _dir.Write("known.txt", "x\n");
        var (_, records) = Traced(fixtures["trace_probe"], known);
        var getpid = records.Where(rec => rec.GetProperty("name").GetString() == "getpid").ToList();
        Assert.NotEmpty(getpid);
        foreach (var rec in getpid)
        {
            Assert.Equal("emulate", rec.GetProperty("disp").GetString());
            Assert.Equal("sched", rec.GetProperty("server").GetString());
            Assert.Equal(1, rec.GetProperty("result").GetInt32());
        }
        var getppid = records.Single(rec => rec.GetProperty("name").GetString() == "getppid");
        Assert.Equal("sched", getppid.GetProperty("server").GetString());
        Assert.Equal(0, getppid.GetProperty("result").GetInt32());
    }

    [Fact]
    public void Threads_and_children_appear_with_their_virtual_pids_and_tids()
    {
        var (r, records) = Traced(fixtures["threads"], "--print-tids");
        Expect.ExitCode(0, r);
        var tids = r.StdoutLines.Where(l => l.StartsWith("tid ", StringComparison.Ordinal)).Select(l => int.Parse(l[4..], CultureInfo.InvariantCulture)).ToHashSet();
        var traced = records.Select(rec => (Pid: rec.GetProperty("pid").GetInt32(), Tid: rec.GetProperty("tid").GetInt32())).ToList();
        Assert.All(traced, p => Assert.Equal(1, p.Pid));
        Assert.Superset(tids, traced.Select(p => p.Tid).ToHashSet());

        var (fr, frecords) = Traced(fixtures["fork_tree"]);
        Expect.ExitCode(0, fr);
        var pids = frecords.Select(rec => rec.GetProperty("pid").GetInt32()).ToHashSet();
        Assert.True(pids.Count > 20 && pids.All(p => p < 1000), $"guest pids in the trace: {string.Join(",", pids.Order())}");
        // fork's result in the parent's record is the child's virtual pid, which appears as a pid in the trace.
        var forked = frecords.Where(rec => rec.GetProperty("name").GetString() is "fork" or "clone" or "clone3" &&
                                           rec.GetProperty("result").ValueKind == JsonValueKind.Number &&
                                           rec.GetProperty("result").GetInt64() > 0)
                             .Select(rec => (int)rec.GetProperty("result").GetInt64()).ToList();
        Assert.NotEmpty(forked);
        Assert.All(forked, child => Assert.Contains(child, pids));
    }

    [Fact]
    public void The_trace_does_not_change_what_the_guest_prints()
    {
        var native = GuestRunner.Native(_dir.Path, "sh", "-c", "ls / | sort | head -3; echo done");
        var (r, _) = Traced("sh", "-c", "ls / | sort | head -3; echo done");
        Expect.SameAsNative(native, r);
    }

    [Fact]
    public void Stats_prints_a_table_of_servers_and_syscalls_on_stderr()
    {
        var known = _dir.Write("known.txt", "x\n");
        var r = GuestRunner.Run(_dir.Path, ["--stats"], fixtures["trace_probe"], known);
        Expect.Success("pid 1 ppid 0\n", r);
        var lines = r.StderrLines;
        Assert.True(lines.Length > 5, $"no stats table on stderr\n{r}");
        Assert.Contains("p50", r.Stderr);
        Assert.Contains("p99", r.Stderr);
        foreach (var server in new[] { "vfs", "mm", "sched" })
            Assert.True(lines.Any(l => l.StartsWith(server, StringComparison.Ordinal) && l.Contains("round trips", StringComparison.Ordinal)),
                $"no round-trip row for the {server} server\n{r}");
        foreach (var (server, syscall) in new[] { ("vfs", "openat"), ("sched", "getpid"), ("mm", "mmap"), ("host", "close") })
        {
            var row = lines.FirstOrDefault(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries) is [var s, var n, ..] && s == server && n == syscall);
            Assert.True(row is not null, $"no row for {syscall} ({server})\n{r}");
            var cells = row!.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            Assert.True(cells.Length >= 6 && int.TryParse(cells[3], out var count) && count >= 1 &&
                        double.TryParse(cells[4], CultureInfo.InvariantCulture, out _) && double.TryParse(cells[5], CultureInfo.InvariantCulture, out _),
                $"row '{row}' is not: server syscall disposition count p50 p99\n{r}");
        }
        var getpid = lines.First(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries) is [_, "getpid", ..]).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("emulate", getpid[2]);
        Assert.Equal("1", getpid[3]);
        var opens = lines.First(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries) is [_, "openat", ..]).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(int.Parse(opens[3], CultureInfo.InvariantCulture) >= 2, "trace_probe opens two paths itself");
    }

    [Fact]
    public void Without_stats_stderr_stays_quiet()
    {
        var r = GuestRunner.Run(_dir.Path, "true");
        Expect.ExitCode(0, r);
        Assert.True(r.Stderr.Length == 0, $"the kernel printed something on stderr\n{r}");
    }
}
