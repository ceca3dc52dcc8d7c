using System.Text;
using System.Text.Json;
using StreamJsonRpc;
using UmlMicro.Contracts.Servers;

namespace UmlMicro.ContractTests;

/// <summary>
/// What every server must do on the wire itself, whatever its subsystem: answer by the contract's method
/// names, reject what it does not know, and end when its input closes or it is asked to.
/// </summary>
[Trait(Kit.Kind, Kit.Wire), Trait(Kit.Server, Kit.AnyServer)]
public sealed class WireContractTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(5);
    private readonly List<ServerProcess> servers = new();

    private static readonly (string Server, string Name, int Version)[] All =
    [
        ("Vfs", Contract.VfsName, Contract.VfsVersion),
        ("Mm", Contract.MmName, Contract.MmVersion),
        ("Sched", Contract.SchedName, Contract.SchedVersion),
    ];

    public static TheoryData<string, string> Contracts()
    {
        var data = new TheoryData<string, string>();
        foreach (var c in All.Where(c => Kit.Includes(c.Server))) data.Add(c.Server, c.Name);
        return data;
    }

    public static TheoryData<string, string, int> Versions()
    {
        var data = new TheoryData<string, string, int>();
        foreach (var c in All.Where(c => Kit.Includes(c.Server))) data.Add(c.Server, c.Name, c.Version);
        return data;
    }

    public static TheoryData<string> Servers => new(Kit.Servers);

    public void Dispose()
    {
        foreach (var server in servers)
            server.Dispose();
    }

    [Theory]
    [MemberData(nameof(Versions))]
    public async Task Hello_answers_a_plain_json_rpc_line(string server, string contractName, int version)
    {
        var process = Start(server);

        await Send(process, """{"jsonrpc":"2.0","id":7,"method":"hello","params":[]}""");
        using var reply = await Receive(process);

        Assert.Equal(7, reply.RootElement.GetProperty("id").GetInt32());
        var hello = reply.RootElement.GetProperty("result");
        Assert.Equal(contractName, hello.GetProperty(nameof(ServerHello.Name)).GetString());
        Assert.Equal(version, hello.GetProperty(nameof(ServerHello.ContractVersion)).GetInt32());
    }

    [Theory]
    [MemberData(nameof(Contracts))]
    public async Task An_unknown_method_gets_an_error_and_the_server_goes_on(string server, string contractName)
    {
        var process = Start(server);

        await Send(process, """{"jsonrpc":"2.0","id":1,"method":"no/such/method","params":[]}""");
        using (var error = await Receive(process))
            Assert.Equal(-32601, error.RootElement.GetProperty("error").GetProperty("code").GetInt32());

        await Send(process, """{"jsonrpc":"2.0","id":2,"method":"hello","params":[]}""");
        using var hello = await Receive(process);
        Assert.Equal(contractName, hello.RootElement.GetProperty("result").GetProperty("Name").GetString());
    }

    [Theory]
    [MemberData(nameof(Servers))]
    public async Task A_malformed_line_gets_an_error_or_ends_the_connection_cleanly(string server)
    {
        var process = Start(server);

        await Send(process, "this is not json {");
        var line = await process.OutputReader.ReadLineAsync().WaitAsync(Patience);

        if (line is null)
        {
            Assert.True(process.WaitForExit(Patience), "the server closed its output but did not exit");
            Assert.InRange(process.ExitCode, 0, 125); // an exit of its own, not a crash by signal
        }
        else
        {
            using var reply = JsonDocument.Parse(line);
            Assert.True(reply.RootElement.TryGetProperty("error", out _), $"not an error answer: {line}");
        }
    }

    [Theory]
    [MemberData(nameof(Contracts))]
    public async Task A_server_exits_when_its_input_closes(string server, string contractName)
    {
        var process = Start(server);
        await Send(process, """{"jsonrpc":"2.0","id":1,"method":"hello","params":[]}""");
        using (var hello = await Receive(process))
            Assert.Equal(contractName, hello.RootElement.GetProperty("result").GetProperty("Name").GetString());

        process.Input.Close();

        Assert.True(process.WaitForExit(Patience), $"{server} still runs with its input closed. Log:\n{process.Log}");
        Assert.Equal(0, process.ExitCode);
    }

    [Theory]
    [MemberData(nameof(Servers))]
    public async Task Shutdown_is_answered_and_the_server_exits(string server)
    {
        var process = Start(server);
        using var rpc = RpcWire.Create(process.Input, process.Output);
        var kernel = rpc.Attach<IKernelServer>();
        rpc.StartListening();

        await kernel.ShutdownAsync().WaitAsync(Patience);

        // The connection stays open: the server must exit of its own accord.
        Assert.True(process.WaitForExit(Patience), $"{server} still runs after shutdown. Log:\n{process.Log}");
        Assert.Equal(0, process.ExitCode);
    }

    /// <summary>Every method of the server's contract with parameters, by wire name (found from the contract, so a new method is tested too).</summary>
    public static TheoryData<string, string> MethodsWithParameters()
    {
        var data = new TheoryData<string, string>();
        foreach (var contract in Docs.ContractInfo.All)
        {
            var server = Kit.Servers.SingleOrDefault(s => s.Equals(contract.Name, StringComparison.OrdinalIgnoreCase));
            if (server is null) continue;
            foreach (var m in contract.Methods.Where(m => m.GetParameters().Length > 0))
                data.Add(server, Docs.ContractTypes.Wire(m));
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(MethodsWithParameters))]
    public async Task A_known_method_without_its_parameters_is_invalid_params_not_method_not_found(string server, string method)
    {
        var process = Start(server);

        await Send(process, $$"""{"jsonrpc":"2.0","id":1,"method":"{{method}}","params":[]}""");
        using var reply = await Receive(process);

        Assert.True(reply.RootElement.TryGetProperty("error", out var error), $"{method} with no parameters was not refused: {reply.RootElement}");
        Assert.Equal(-32602, error.GetProperty("code").GetInt32());
    }

    private ServerProcess Start(string server)
    {
        var process = ServerProcess.Start(server);
        servers.Add(process);
        return process;
    }

    private static async Task Send(ServerProcess process, string line)
    {
        await process.Input.WriteAsync(Encoding.UTF8.GetBytes(line + "\n"));
        await process.Input.FlushAsync();
    }

    private static async Task<JsonDocument> Receive(ServerProcess process)
    {
        string? line = await process.OutputReader.ReadLineAsync().WaitAsync(Patience);
        Assert.NotNull(line);
        return JsonDocument.Parse(line);
    }
}
