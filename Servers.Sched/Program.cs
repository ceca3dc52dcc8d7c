// The scheduler server's main loop: receive a request on stdin, answer on stdout, until the supervisor
// closes the pipe or asks for shutdown. What the server owns and how it is rebuilt: see SchedServer.
using StreamJsonRpc;
using UmlMicro.Contracts.Servers;
using UmlMicro.Servers.Sched;

// stdout is the wire: anything printed to Console.Out by mistake would corrupt it, so send it to the log.
var wire = Console.OpenStandardOutput();
Console.SetOut(Console.Error);

var server = new SchedServer(new PidNamespace());
return await ServerLoop.RunAsync("sched", server, RpcTargetMetadata.FromShape<ISchedServer, ContractShapes>(), server.ShutdownRequested, Console.OpenStandardInput(), wire);
