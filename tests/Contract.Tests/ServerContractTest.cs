using StreamJsonRpc;
using UmlMicro.Contracts.Servers;

namespace UmlMicro.ContractTests;

/// <summary>
/// Every test gets a fresh server of its own, connected over the contract's wire with a typed proxy, so the
/// method names on the wire are the interface's JsonRpcMethod names; the server is killed after the test.
/// </summary>
public abstract class ServerContractTest<T> : IDisposable where T : class, IKernelServer
{
    private readonly JsonRpc rpc;
    private readonly string serverName;
    private readonly List<(ServerProcess Server, JsonRpc Rpc)> successors = [];

    protected ServerContractTest(string serverName)
    {
        this.serverName = serverName;
        Server = ServerProcess.Start(serverName);
        rpc = RpcWire.Create(Server.Input, Server.Output);
        Proxy = rpc.Attach<T>();
        rpc.StartListening();
        try
        {
            Proxy.HelloAsync().WaitAsync(TimeSpan.FromSeconds(10)).GetAwaiter().GetResult();
        }
        catch (Exception e)
        {
            Server.WaitForExit(TimeSpan.FromSeconds(1)); // lets its last words reach the log
            string log = Server.Log;
            Dispose();
            throw new InvalidOperationException($"The {serverName} server ({Server.CommandLine}) did not answer hello. Its stderr:\n{log}", e);
        }
    }

    protected ServerProcess Server { get; }

    protected T Proxy { get; }

    /// <summary>A second, fresh server of the same kind, as a restart would start (killed with the test).</summary>
    protected async Task<T> Successor()
    {
        var server = ServerProcess.Start(serverName);
        var link = RpcWire.Create(server.Input, server.Output);
        successors.Add((server, link));
        var proxy = link.Attach<T>();
        link.StartListening();
        await proxy.HelloAsync().WaitAsync(TimeSpan.FromSeconds(10));
        return proxy;
    }

    public void Dispose()
    {
        foreach (var (server, link) in successors)
        {
            server.Dispose();
            link.Dispose();
        }
        Server.Dispose();
        rpc.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>A request that the server must refuse as a protocol error: a JSON-RPC error answer, after which
    /// the connection still serves.</summary>
    protected async Task Refused(Func<Task> call)
    {
        var error = await Assert.ThrowsAnyAsync<RemoteRpcException>(call);
        Assert.IsNotType<ConnectionLostException>(error);
        Assert.NotNull(await Proxy.HelloAsync());
    }
}
