using System.Text;
using System.Text.Json;
using UmlMicro.Contracts.Servers;

namespace UmlMicro.ContractTests;

/// <summary>
/// Hostile lines on a server's wire: each is refused with a JSON-RPC error (none of it runs), memory stays bounded,
/// and the server answers the next request as if nothing happened.
/// </summary>
[Trait(Kit.Kind, Kit.Wire)]
public sealed class HostileWireTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);
    private readonly List<ServerProcess> servers = new();

    public static TheoryData<string> Servers => new(Kit.Servers);

    public static TheoryData<string, string, int> Refusals()
    {
        var data = new TheoryData<string, string, int>();
        var lines = new (string Line, int Code)[]
        {
            ("""{"jsonrpc":"2.0","id":1,"method":"hello","params":[""", -32700),          // cut off
            ("this is not json {", -32700),
            ("""[{"jsonrpc":"2.0","id":1,"method":"hello","params":[]}]""", -32600),     // a batch
            ("42", -32600),
            ("\"hello\"", -32600),
            ("null", -32600),
            ("""{"jsonrpc":"2.0","id":{"a":1},"method":"hello","params":[]}""", -32600),
            ("""{"jsonrpc":"2.0","id":[1],"method":"hello","params":[]}""", -32600),
            ("""{"jsonrpc":"2.0","id":1.5,"method":"hello","params":[]}""", -32600),
            ("""{"jsonrpc":"2.0","id":true,"method":"hello","params":[]}""", -32600),
            ("""{"jsonrpc":"2.0","id":1,"method":42,"params":[]}""", -32600),
            ("""{"jsonrpc":"1.0","id":1,"method":"hello","params":[]}""", -32600),
            ("""{"jsonrpc":"2.0","id":1,"method":"hello","params":7}""", -32602),
            ("""{"jsonrpc":"2.0","id":1,"method":"hello","params":[""" + new string('[', 5000) + new string(']', 5000) + "]}", -32700), // deep nesting
            (new string('{', 100_000), -32700),
            ("\u00ff\u00fe garbage", -32700),
        };
        foreach (var server in Kit.Servers)
            foreach (var (line, code) in lines)
                data.Add(server, line, code);
        return data;
    }

    public void Dispose()
    {
        foreach (var server in servers)
            server.Dispose();
    }

    [Theory, Trait(Kit.Server, Kit.AnyServer)]
    [MemberData(nameof(Refusals))]
    public async Task A_malformed_message_is_refused_with_an_error_and_the_server_goes_on(string server, string line, int code)
    {
        var process = Start(server);

        await Send(process, line);
        using (var reply = await Receive(process))
        {
            var error = reply.RootElement.GetProperty("error");
            Assert.Equal(code, error.GetProperty("code").GetInt32());
            // The request's own id when it had a usable one, null otherwise (JSON-RPC 2.0, section 5).
            var id = reply.RootElement.GetProperty("id");
            Assert.True(id.ValueKind == JsonValueKind.Null || id.GetInt32() == 1, $"answered with id {id}");
        }
        await AssertServes(process);
    }

    [Theory, Trait(Kit.Server, Kit.AnyServer)]
    [MemberData(nameof(Servers))]
    public async Task A_64_MiB_line_is_refused_without_holding_it_and_the_server_goes_on(string server)
    {
        var process = Start(server);
        await AssertServes(process);
        long before = PeakKiB(process);

        var chunk = Encoding.ASCII.GetBytes("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"hello\",\"params\":[\"" + new string('a', (1 << 20) - 60));
        for (int i = 0; i < 64; i++)
            await process.Input.WriteAsync(chunk);
        await Send(process, "\"]}");

        using (var reply = await Receive(process))
            Assert.Equal(-32600, reply.RootElement.GetProperty("error").GetProperty("code").GetInt32());
        // The cap is 16 MiB: holding the 64 MiB line (as UTF-16, twice over) would show several times that.
        long grown = PeakKiB(process) - before;
        Assert.True(grown < 48 * 1024, $"{server}'s peak memory grew by {grown} KiB reading a 64 MiB line");
        await AssertServes(process);
    }

    [Theory, Trait(Kit.Server, Kit.AnyServer)]
    [MemberData(nameof(Servers))]
    public async Task A_line_that_never_ends_keeps_memory_bounded_and_closing_the_input_ends_the_server(string server)
    {
        var process = Start(server);
        await AssertServes(process);
        long before = PeakKiB(process);

        var chunk = Encoding.ASCII.GetBytes(new string('x', 1 << 20));
        for (int i = 0; i < 48; i++)
            await process.Input.WriteAsync(chunk);
        await process.Input.FlushAsync();
        long grown = PeakKiB(process) - before;
        Assert.True(grown < 48 * 1024, $"{server}'s peak memory grew by {grown} KiB reading 48 MiB without a newline");
        Assert.False(process.WaitForExit(TimeSpan.FromMilliseconds(200)), "the server gave up while its input was still open");

        process.Input.Close();
        Assert.True(process.WaitForExit(Patience), $"{server} hangs after its input closed mid-line. Log:\n{process.Log}");
        Assert.Equal(0, process.ExitCode); // the cut-off line never ran, and nothing else was lost
    }

    [Fact, Trait(Kit.Server, "sched")]
    public async Task A_cut_off_state_change_never_runs_any_part_of_it()
    {
        var process = Start("Sched");
        const string startInit = """{"jsonrpc":"2.0","id":1,"method":"sched/start_init","params":[4242]}""";

        // Cut off at every length: none of the prefixes is a request, so none may create pid 1.
        for (int cut = 1; cut < startInit.Length; cut += 7)
        {
            await Send(process, startInit[..cut]);
            using var reply = await Receive(process);
            Assert.True(reply.RootElement.TryGetProperty("error", out _), $"'{startInit[..cut]}' was not refused: {reply.RootElement}");
        }
        // Wrong parameter types, missing, extra and null parameters are refused before the method runs.
        foreach (var bad in new[]
                 {
                     """{"jsonrpc":"2.0","id":2,"method":"sched/start_init","params":["4242"]}""",
                     """{"jsonrpc":"2.0","id":3,"method":"sched/start_init","params":[]}""",
                     """{"jsonrpc":"2.0","id":4,"method":"sched/start_init","params":[4242, 1]}""",
                     """{"jsonrpc":"2.0","id":5,"method":"sched/start_init","params":[1e300]}""",
                     """{"jsonrpc":"2.0","id":6,"method":"sched/start_init","params":{"bogus":4242}}""",
                     """{"jsonrpc":"2.0","id":7,"method":"sched/configure","params":[null]}""",
                     """{"jsonrpc":"2.0","id":8,"method":"sched/configure","params":[{}]}""",
                     """{"jsonrpc":"2.0","id":9,"method":"sched/task_created","params":[null]}""",
                     """{"jsonrpc":"2.0","id":9,"method":"sched/proc_text","params":[null]}""",
                     """{"jsonrpc":"2.0","id":9,"method":"sched/proc_text","params":[{"Vpid":1,"Vtid":1}]}""",
                 })
        {
            await Send(process, bad);
            using var reply = await Receive(process);
            Assert.Equal(-32602, reply.RootElement.GetProperty("error").GetProperty("code").GetInt32());
        }
        await Send(process, """{"jsonrpc":"2.0","id":10,"method":"sched/processes","params":[]}""");
        using (var processes = await Receive(process))
            Assert.Equal(0, processes.RootElement.GetProperty("result").GetArrayLength());
        await Send(process, """{"jsonrpc":"2.0","id":11,"method":"sched/cpus","params":[]}""");
        using (var cpus = await Receive(process))
            Assert.True(cpus.RootElement.GetProperty("result").GetInt32() > 0, "a refused sched/configure changed the CPU count");

        // The whole request does run: the test above could not pass by refusing everything.
        await Send(process, startInit);
        using (var grant = await Receive(process))
            Assert.Equal(1, grant.RootElement.GetProperty("result").GetProperty("Vpid").GetInt32());
        await Send(process, """{"jsonrpc":"2.0","id":12,"method":"sched/processes","params":[]}""");
        using (var processes = await Receive(process))
            Assert.Equal(4242, processes.RootElement.GetProperty("result")[0].GetProperty("HostPid").GetInt32());
    }

    [Theory, Trait(Kit.Server, Kit.AnyServer)]
    [MemberData(nameof(Servers))]
    public async Task A_refused_notification_gets_no_answer_and_the_server_goes_on(string server)
    {
        var process = Start(server);
        await Send(process, """{"jsonrpc":"2.0","method":"hello","params":7}""");
        // The next line on the wire is the answer to the next request, not an error for the notification.
        await Send(process, """{"jsonrpc":"2.0","id":"after","method":"hello","params":[]}""");
        using var reply = await Receive(process);
        Assert.Equal("after", reply.RootElement.GetProperty("id").GetString());
        Assert.True(reply.RootElement.TryGetProperty("result", out _), reply.RootElement.ToString());
        var deadline = DateTime.UtcNow + Patience;
        while (!process.Log.Contains("refused", StringComparison.Ordinal) && DateTime.UtcNow < deadline)
            await Task.Delay(20);
        Assert.Contains("refused", process.Log); // never silent: the supervisor that sent it has a bug (docs/contract/README.md, "Errors")
    }

    private ServerProcess Start(string server)
    {
        var process = ServerProcess.Start(server);
        servers.Add(process);
        return process;
    }

    private static async Task AssertServes(ServerProcess process)
    {
        await Send(process, """{"jsonrpc":"2.0","id":"alive","method":"hello","params":[]}""");
        using var hello = await Receive(process);
        Assert.Equal("alive", hello.RootElement.GetProperty("id").GetString());
        Assert.True(hello.RootElement.TryGetProperty("result", out _), $"not an answer: {hello.RootElement}\n{process.Log}");
    }

    /// <summary>The server's peak resident memory (VmHWM) so far.</summary>
    private static long PeakKiB(ServerProcess process)
    {
        foreach (var line in File.ReadLines($"/proc/{process.Pid}/status"))
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);
        throw new InvalidOperationException("no VmHWM");
    }

    private static async Task Send(ServerProcess process, string line)
    {
        await process.Input.WriteAsync(Encoding.UTF8.GetBytes(line + "\n"));
        await process.Input.FlushAsync();
    }

    private static async Task<JsonDocument> Receive(ServerProcess process)
    {
        string? line = await process.OutputReader.ReadLineAsync().WaitAsync(Patience);
        Assert.True(line is not null, $"the server closed its output. Log:\n{process.Log}");
        return JsonDocument.Parse(line!);
    }
}
