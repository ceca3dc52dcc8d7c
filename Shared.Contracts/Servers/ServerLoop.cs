using System;
using System.IO;
using System.Threading;
using System.Threading.Tasks;
using StreamJsonRpc;
using StreamJsonRpc.Reflection;

namespace UmlMicro.Contracts.Servers;

/// <summary>
/// The main loop every kernel server shares: answer requests from <c>input</c> on <c>output</c> until the
/// supervisor closes the pipe or asks for shutdown. Silent unless something goes wrong: stderr is the
/// supervisor's terminal.
/// </summary>
public static class ServerLoop
{
    /// <param name="contract">The contract's methods: <c>RpcTargetMetadata.FromShape&lt;IXServer, ContractShapes&gt;()</c>,
    /// from the shape generated at compile time (no code is made at run time, which NativeAOT cannot do).</param>
    /// <returns>The process exit status: 0 after a clean end, 1 when the connection broke.</returns>
    public static async Task<int> RunAsync(string name, IKernelServer service, RpcTargetMetadata contract, Task shutdownRequested, Stream input, Stream output)
    {
        using var rpc = RpcWire.CreateServer(output, input, name, contract);
        // One request at a time, in the order they arrived: the supervisor posts state changes (a task
        // exited, a zombie was reaped) without waiting, and the next request must see them applied. Each is handled
        // on the thread that read it, which reads the next one only afterwards.
        rpc.SynchronizationContext = new InlineSynchronizationContext();
        // No StreamJsonRpc tracing: its listener only reaches an attached debugger, yet each error it traces (a refused
        // notification, such as the launcher's scratch mapping that MM has no space for yet) has its stack trace
        // rendered first, which in a NativeAOT server costs milliseconds the next request waits for.
        rpc.TraceSource.Switch.Level = System.Diagnostics.SourceLevels.Off;
        rpc.AddLocalRpcTarget(contract, service, null);

        // Exit once the reply to shutdown is on the wire, and after the supervisor hung up or had a moment to:
        // a StreamJsonRpc client still finishing its own send when the pipes close reports a lost connection.
        var shutdownAnswered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        ((IJsonRpcFormatterCallbacks)rpc).ResponseSent += (_, _) =>
        {
            if (shutdownRequested.IsCompleted) shutdownAnswered.TrySetResult();
        };
        rpc.StartListening();

        var ended = await Task.WhenAny(rpc.Completion, shutdownAnswered.Task).ConfigureAwait(false);
        if (ended == shutdownAnswered.Task)
            await Task.WhenAny(rpc.Completion, Task.Delay(TimeSpan.FromSeconds(1))).ConfigureAwait(false);
        // After shutdown every message before it has been handled: a pipe that breaks now has lost nothing.
        if (rpc.Completion.IsFaulted && !shutdownRequested.IsCompleted)
        {
            Console.Error.WriteLine($"{name}: connection lost: {rpc.Completion.Exception?.GetBaseException().Message}");
            return 1;
        }
        return 0;
    }
}

/// <summary>Runs what is posted at once, on the posting thread: a server's requests, on the thread that read them.
/// Handlers never wait for another message, so nothing can wait on itself.</summary>
public sealed class InlineSynchronizationContext : SynchronizationContext
{
    public override void Post(SendOrPostCallback d, object? state) => d(state);

    public override void Send(SendOrPostCallback d, object? state) => d(state);

    public override SynchronizationContext CreateCopy() => this;
}
