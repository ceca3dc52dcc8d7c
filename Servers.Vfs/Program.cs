// The VFS server's main loop: receive a request on stdin, answer on stdout, until the supervisor
// closes the pipe or asks for shutdown. What the server owns and how it is rebuilt: see VfsServer.
using UmlMicro.Contracts.Servers;
using UmlMicro.Servers.Vfs;

// stdout is the wire: anything printed to Console.Out by mistake would corrupt it, so send it to the log.
var wire = Console.OpenStandardOutput();
Console.SetOut(Console.Error);

using var server = new VfsServer();
return await ServerLoop.RunAsync<IVfsServer>("vfs", server, server.ShutdownRequested, Console.OpenStandardInput(), wire);
