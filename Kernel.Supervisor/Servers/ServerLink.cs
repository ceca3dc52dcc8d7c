using System.Diagnostics;
using StreamJsonRpc;
using UmlMicro.Contracts.Servers;
using UmlMicro.Contracts.Syscalls;
using UmlMicro.Supervisor.Observability;

namespace UmlMicro.Supervisor.Servers;

/// <summary>The command that starts a server process: "PROGRAM [ARGS...]", split on spaces; "{bin}" is the supervisor's folder.</summary>
public sealed record ServerCommand(string Command);

/// <summary>A server process could not be started or did not answer as its contract says.</summary>
internal sealed class ServerFailure(string message) : Exception(message);

/// <summary>
/// The supervisor's end of one server: the process, its JSON-RPC connection and a typed proxy. Calls are
/// synchronous on the calling (tracer) thread, which measured a much better p99 than awaiting.
/// </summary>
internal sealed class ServerLink<T> : IDisposable where T : class, IKernelServer
{
    private readonly Process? _process;
    private readonly JsonRpc? _rpc;
    private readonly KernelStats _stats;

    public Server Id { get; }
    public string Name { get; }
    public T Proxy { get; }

    private ServerLink(Server id, string name, Process process, KernelStats stats)
    {
        Id = id;
        Name = name;
        _process = process;
        _stats = stats;
        _rpc = RpcWire.Create(process.StandardInput.BaseStream, process.StandardOutput.BaseStream);
        Proxy = _rpc.Attach<T>();
        _rpc.StartListening();
    }

    private ServerLink(Server id, string name, T proxy, KernelStats stats)
    {
        Id = id;
        Name = name;
        Proxy = proxy;
        _stats = stats;
    }

    /// <summary>A link to a server object in this process (unit tests hand in a mock of the contract).</summary>
    public static ServerLink<T> InProcess(Server id, string name, T proxy, KernelStats stats) => new(id, name, proxy, stats);

    /// <summary>Starts the server process; <see cref="Handshake"/> must follow before any other call.</summary>
    public static ServerLink<T> Start(Server id, string name, ServerCommand command, string binDir, KernelStats stats)
    {
        var parts = command.Command.Replace("{bin}", binDir.TrimEnd('/'))
            .Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (parts.Length == 0) throw new ServerFailure($"{name} server: empty command");
        var psi = new ProcessStartInfo(parts[0])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = false,
            UseShellExecute = false,
        };
        foreach (var a in parts.Skip(1)) psi.ArgumentList.Add(a);
        Process process;
        try
        {
            process = Process.Start(psi) ?? throw new ServerFailure($"{name} server: '{parts[0]}' did not start");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new ServerFailure($"{name} server: cannot start '{parts[0]}': {e.Message}");
        }
        return new ServerLink<T>(id, name, process, stats);
    }

    /// <summary>Checks that the process is the server it claims to be, speaking <paramref name="version"/> of the contract.</summary>
    public Task HandshakeAsync(string expectedName, int version, TimeSpan timeout) => System.Threading.Tasks.Task.Run(async () =>
    {
        ServerHello hello;
        try
        {
            hello = await Proxy.HelloAsync().WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            throw new ServerFailure($"{Name} server: no handshake within {timeout.TotalSeconds:0.#} s");
        }
        catch (Exception e) when (e is RemoteInvocationException or ConnectionLostException or ObjectDisposedException)
        {
            throw new ServerFailure($"{Name} server: handshake failed: {e.Message}");
        }
        if (hello.Name != expectedName || hello.ContractVersion != version)
            throw new ServerFailure($"{Name} server: speaks '{hello.Name}' v{hello.ContractVersion}, expected '{expectedName}' v{version}");
    });

    private Exception? _postFailure;

    /// <summary>Wire names of the contract's methods (their JsonRpcMethod attributes), by C# name.</summary>
    private static readonly Dictionary<string, (string Wire, System.Reflection.MethodInfo Method)> Methods =
        new[] { typeof(T) }.Concat(typeof(T).GetInterfaces()).SelectMany(i => i.GetMethods())
            .ToDictionary(m => m.Name, m => (m.GetCustomAttributes(typeof(JsonRpcMethodAttribute), false)
                .OfType<JsonRpcMethodAttribute>().FirstOrDefault()?.Name ?? m.Name, m));

    /// <summary>
    /// A state change the server must apply but need not answer (a task exited, a mapping was made): a JSON-RPC
    /// notification of contract method <paramref name="method"/> (its C# name), sent in order and never waited
    /// for. The server handles messages one at a time, in order, so any later request sees it applied. No
    /// reply comes back, so nothing can go wrong reading one; a message that could not be sent surfaces at the
    /// next <see cref="Call{TResult}"/>.
    /// </summary>
    public void Post(string method, params object?[] args)
    {
        var (wire, info) = Methods[method];
        Task sent = _rpc is null ? (Task)info.Invoke(Proxy, args)! : _rpc.NotifyAsync(wire, args);
        if (sent.IsCompleted) Observe(sent);
        else sent.ContinueWith(Observe, TaskScheduler.Default);
    }

    private void Observe(Task t)
    {
        if (t.IsFaulted) Interlocked.CompareExchange(ref _postFailure, t.Exception!.GetBaseException(), null);
    }

    /// <summary>The first state change that could not be sent, if any.</summary>
    public Exception? PostFailure => Volatile.Read(ref _postFailure);

    private void ThrowIfPostFailed()
    {
        if (Volatile.Read(ref _postFailure) is { } e) throw new ServerFailure($"{Name} server: a state change could not be sent: {e.Message}");
    }

    /// <summary>A request that waits for its answer, timed for --stats.</summary>
    public TResult Call<TResult>(Func<T, Task<TResult>> request)
    {
        ThrowIfPostFailed();
        long t0 = Stopwatch.GetTimestamp();
        var result = request(Proxy).GetAwaiter().GetResult();
        _stats.RecordServer(Id, Stopwatch.GetTimestamp() - t0);
        return result;
    }

    public void Call(Func<T, Task> request)
    {
        ThrowIfPostFailed();
        long t0 = Stopwatch.GetTimestamp();
        request(Proxy).GetAwaiter().GetResult();
        _stats.RecordServer(Id, Stopwatch.GetTimestamp() - t0);
    }

    public void Dispose()
    {
        if (_process is null || _rpc is null) return;
        try
        {
            if (!_process.HasExited)
            {
                // Notifications go out in order: once shutdown is on the wire, every state change before it is
                // too. Closing the pipe earlier would cut a message in half under the server's reader.
                _rpc.NotifyAsync("shutdown").Wait(TimeSpan.FromSeconds(2));
                _process.StandardInput.Close();
                if (!_process.WaitForExit(TimeSpan.FromSeconds(2))) _process.Kill(entireProcessTree: true);
            }
        }
        catch (Exception e) when (e is InvalidOperationException or IOException or ObjectDisposedException or AggregateException)
        {
            // Already gone: nothing is left running either way.
        }
        finally
        {
            try { if (!_process.HasExited) _process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            _rpc.Dispose();
            _process.Dispose();
        }
    }
}
