using System;
using System.Diagnostics.CodeAnalysis;
using System.Text.Json.Serialization.Metadata;
using System.Threading.Tasks;
using StreamJsonRpc;
using StreamJsonRpc.Protocol;

namespace UmlMicro.Contracts.Servers;

/// <summary>What every server answers the same way: its hello and the request to shut down.</summary>
public abstract class KernelServerBase(string name, int contractVersion) : IKernelServer
{
    private readonly TaskCompletionSource _shutdown = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes when the supervisor has asked the server to exit.</summary>
    public Task ShutdownRequested => _shutdown.Task;

    public Task<ServerHello> HelloAsync() => Task.FromResult(new ServerHello(name, contractVersion, Environment.ProcessId));

    public Task ShutdownAsync()
    {
        _shutdown.TrySetResult();
        return Task.CompletedTask;
    }

    /// <summary>By default a server keeps no checkpoints: it is restored by replaying everything.</summary>
    public virtual Task<string?> CheckpointAsync() => Task.FromResult<string?>(null);

    public virtual Task RestoreAsync(string checkpoint) => throw ProtocolViolation.Of($"the {name} server keeps no checkpoints");

    /// <summary>A checkpoint's text read back as the server's own record of its state, or a protocol error.</summary>
    protected static TState ReadCheckpoint<TState>(string checkpoint, JsonTypeInfo<TState> json) where TState : class
    {
        try
        {
            return System.Text.Json.JsonSerializer.Deserialize(checkpoint ?? "", json) ?? throw new System.Text.Json.JsonException("null");
        }
        catch (System.Text.Json.JsonException e)
        {
            throw NotACheckpoint(e.Message);
        }
    }

    protected static LocalRpcException NotACheckpoint(string why) => ProtocolViolation.Of($"not a checkpoint of this server: {why}");
}

/// <summary>
/// A request that is wrong whatever the guest did (an unknown pid, a second init, a relative cwd): the
/// supervisor's books and the server's disagree. It is answered with a JSON-RPC error (code -32000, not
/// invalid-params: StreamJsonRpc clients take -32602 for a missing method), which the supervisor treats as a
/// protocol error, instead of an errno that would be handed on to the guest.
/// </summary>
public static class ProtocolViolation
{
    public static LocalRpcException Of(string message) =>
        new(message) { ErrorCode = (int)JsonRpcErrorCode.InvocationError };
}
