// rpcping SERVER_EXE [N]: starts a kernel server (build/Release/Servers.Vfs, ...) as the supervisor does, over its
// stdin and stdout, and times JSON-RPC "hello" — a request the server answers with no work — as the supervisor sends
// requests: synchronously, one at a time. Prints one line of key=value pairs:
//   cold_us   from the process's start to its first answer (runtime start-up and JIT included)
//   first_us  the second request (the first after the connection is up)
//   mean_us, p50_us, p99_us  over N more requests
using System.Diagnostics;
using StreamJsonRpc;
using UmlMicro.Contracts.Servers;

if (args.Length is < 1 or > 2 || (args.Length == 2 && !int.TryParse(args[1], out _)))
{
    Console.Error.WriteLine("usage: rpcping SERVER_EXE [N]");
    return 2;
}
int n = args.Length == 2 ? int.Parse(args[1]) : 20000;
long t0 = Stopwatch.GetTimestamp();
using var server = Process.Start(new ProcessStartInfo(args[0])
{
    RedirectStandardInput = true,
    RedirectStandardOutput = true,
    UseShellExecute = false,
}) ?? throw new InvalidOperationException("cannot start " + args[0]);
using var rpc = RpcWire.Create(server.StandardInput.BaseStream, server.StandardOutput.BaseStream);
rpc.StartListening();

ServerHello Hello() => rpc.InvokeAsync<ServerHello>("hello").GetAwaiter().GetResult();

var hello = Hello();
double cold = Stopwatch.GetElapsedTime(t0).TotalMicroseconds;
long t1 = Stopwatch.GetTimestamp();
Hello();
double first = Stopwatch.GetElapsedTime(t1).TotalMicroseconds;
var us = new double[n];
for (int i = 0; i < n; i++)
{
    long t = Stopwatch.GetTimestamp();
    Hello();
    us[i] = Stopwatch.GetElapsedTime(t).TotalMicroseconds;
}
double mean = us.Average();
Array.Sort(us);
Console.WriteLine($"server={hello.Name} n={n} cold_us={cold:0} first_us={first:0.0} mean_us={mean:0.0} p50_us={us[n / 2]:0.0} p99_us={us[n * 99 / 100]:0.0}");
server.StandardInput.Close();
server.WaitForExit(2000);
return 0;
