using System.Text.RegularExpressions;

namespace UmlMicro.Tests.Integration;

/// <summary>
/// SMP in the kernel itself: guest threads inside server calls at the same time (tests/fixtures/server_calls.c),
/// each getting its own answers. Served off the tracer thread, counted by --stats. Timing is measured in bench/.
/// </summary>
public sealed class SmpTests(FixturePrograms fixtures) : IClassFixture<FixturePrograms>, IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private const string AllOk = "thread 0: ok\nthread 1: ok\nthread 2: ok\nthread 3: ok\n";

    [Fact]
    public void Four_threads_resolving_paths_at_once_each_get_their_own_answers_as_natively()
    {
        Expect.Success(AllOk, GuestRunner.Native(_dir.Path, fixtures["server_calls"], "300"));
        Expect.Success(AllOk, GuestRunner.Run(_dir.Path, fixtures["server_calls"], "300"));
    }

    [Fact]
    public void Several_threads_are_inside_server_calls_at_the_same_time()
    {
        var r = GuestRunner.Run(new RunSpec(_dir.Path, fixtures["server_calls"], ["300"]) { Options = ["--stats"] });
        Expect.Success(AllOk, r);
        var m = Regex.Match(r.Stderr, @"syscalls served off the tracer thread: (\d+), at most (\d+) at once");
        Assert.True(m.Success, $"no off-tracer line in the stats\n{r}");
        Assert.True(int.Parse(m.Groups[2].Value) >= 2, $"four threads making 2400 path calls, never two in server calls at once?\n{r}");
    }

    [Fact]
    public void A_single_thread_is_served_on_the_tracer()
    {
        var r = GuestRunner.Run(new RunSpec(_dir.Path, "sh", ["-c", "for i in 1 2 3; do test -e /etc/passwd; done; echo done"]) { Options = ["--stats"] });
        Expect.Success("done\n", r);
        Assert.Contains("syscalls served off the tracer thread: 0, at most 0 at once", r.Stderr);
    }
}
