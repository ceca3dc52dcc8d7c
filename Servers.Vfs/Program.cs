// The VFS server's main loop: receive a request on stdin, answer on stdout, until the supervisor
// closes the pipe or asks for shutdown. What the server owns and how it is rebuilt: see VfsServer.
// --no-leases: grant no lease, so that every lookup reaches the server.
using StreamJsonRpc;
using UmlMicro.Contracts.Servers;
using UmlMicro.Servers.Vfs;

if (args.FirstOrDefault(a => a != "--no-leases") is { } unknown)
{
    Console.Error.WriteLine($"vfs: unknown option '{unknown}' (the only one is --no-leases)");
    return 2;
}

// stdout is the wire: anything printed to Console.Out by mistake would corrupt it, so send it to the log.
var wire = Console.OpenStandardOutput();
Console.SetOut(Console.Error);

using var server = new VfsServer(grantLeases: !args.Contains("--no-leases"));
return await ServerLoop.RunAsync("vfs", server, RpcTargetMetadata.FromShape<IVfsServer, ContractShapes>(), server.ShutdownRequested, Console.OpenStandardInput(), wire);
