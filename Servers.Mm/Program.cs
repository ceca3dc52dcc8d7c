// The memory-management server's main loop: receive a request on stdin, answer on stdout, until the
// supervisor closes the pipe or asks for shutdown. What the server owns and how it is rebuilt: see MmServer.
using StreamJsonRpc;
using UmlMicro.Contracts.Servers;
using UmlMicro.Servers.Mm;

// stdout is the wire: anything printed to Console.Out by mistake would corrupt it, so send it to the log.
var wire = Console.OpenStandardOutput();
Console.SetOut(Console.Error);

var server = new MmServer();
return await ServerLoop.RunAsync("mm", server, RpcTargetMetadata.FromShape<IMmServer, ContractShapes>(), server.ShutdownRequested, Console.OpenStandardInput(), wire);
