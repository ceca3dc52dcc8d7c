// The memory-management server's main loop: receive a request on stdin, answer on stdout, until the
// supervisor closes the pipe or asks for shutdown. What the server owns and how it is rebuilt: see MmServer.
using StreamJsonRpc.Reflection;
using UmlMicro.Contracts.Servers;
using UmlMicro.Servers.Mm;

// stdout is the wire: anything printed to Console.Out by mistake would corrupt it, so send it to the log.
var wire = Console.OpenStandardOutput();
Console.SetOut(Console.Error);

var mm = new MmServer();
using var rpc = RpcWire.Create(wire, Console.OpenStandardInput());
rpc.AddLocalRpcTarget<IMmServer>(mm, null);

// Exit once the reply to shutdown is on the wire (the first answer after the request, as long as the
// supervisor sends shutdown alone), and after the supervisor hung up or had a moment to: a StreamJsonRpc
// client still finishing its own send when the pipes close reports a lost connection instead of the reply.
var shutdownAnswered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
((IJsonRpcFormatterCallbacks)rpc).ResponseSent += (_, _) =>
{
    if (mm.ShutdownRequested.IsCompleted)
        shutdownAnswered.TrySetResult();
};

rpc.StartListening();
Console.Error.WriteLine($"mm: contract {Contract.MmName} v{Contract.MmVersion}, pid {Environment.ProcessId}");

var ended = await Task.WhenAny(rpc.Completion, shutdownAnswered.Task);
if (ended == shutdownAnswered.Task)
    await Task.WhenAny(rpc.Completion, Task.Delay(TimeSpan.FromSeconds(1)));
if (rpc.Completion.IsFaulted)
{
    Console.Error.WriteLine($"mm: connection lost: {rpc.Completion.Exception?.GetBaseException().Message}");
    return 1;
}
Console.Error.WriteLine(ended == rpc.Completion ? "mm: input closed, exiting" : "mm: shutdown");
return 0;
