using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using UmlMicro.Contracts.Syscalls;

namespace UmlMicro.Supervisor.Observability;

/// <summary>Counts and latencies per syscall and per server, printed by --stats when the guest ends.</summary>
internal sealed class KernelStats
{
    private readonly LatencyHistogram?[] _syscalls = new LatencyHistogram?[SyscallTable.Capacity + 1];
    private readonly ConcurrentDictionary<Server, LatencyHistogram> _servers = new();

    public static double Micros(long ticks) => ticks * 1_000_000.0 / Stopwatch.Frequency;

    public void RecordSyscall(int nr, long ticks)
    {
        int i = nr is >= 0 and < SyscallTable.Capacity ? nr : SyscallTable.Capacity;
        var h = _syscalls[i] ?? Interlocked.CompareExchange(ref _syscalls[i], new LatencyHistogram(), null) ?? _syscalls[i]!;
        h.Record(Micros(ticks));
    }

    public void RecordServer(Server server, long ticks) =>
        _servers.GetOrAdd(server, _ => new LatencyHistogram()).Record(Micros(ticks));

    private long _offTracer, _offTracerMost;

    /// <summary>A call was handed to a syscall worker while <paramref name="inFlight"/> were being served off the tracer (it included).</summary>
    public void ServedOffTracer(int inFlight)
    {
        Interlocked.Increment(ref _offTracer);
        long most;
        while (inFlight > (most = Interlocked.Read(ref _offTracerMost)) && Interlocked.CompareExchange(ref _offTracerMost, inFlight, most) != most) { }
    }

    /// <summary>The line --stats prints about calls served off the tracer thread.</summary>
    public string RenderOffTracer() =>
        $"syscalls served off the tracer thread: {Interlocked.Read(ref _offTracer)}, at most {Interlocked.Read(ref _offTracerMost)} at once\n";

    /// <summary>The table --stats prints: one block per server (its round trips), then one row per syscall with its owner.</summary>
    public string Render()
    {
        var sb = new StringBuilder();
        sb.AppendLine("umlmicro stats (latency in µs, entry stop to exit stop for syscalls, request to reply for servers)");
        sb.AppendLine($"{"server",-8} {"syscall",-22} {"disposition",-11} {"count",10} {"p50",10} {"p99",10}");
        foreach (var (server, h) in _servers.OrderBy(kv => kv.Key))
            sb.AppendLine($"{Name(server),-8} {"(round trips)",-22} {"",-11} {h.Count,10} {h.Quantile(0.5),10:0.0} {h.Quantile(0.99),10:0.0}");
        var rows = Enumerable.Range(0, _syscalls.Length)
            .Where(i => _syscalls[i] is { Count: > 0 })
            .Select(i => (info: SyscallTable.Get(i < SyscallTable.Capacity ? i : -1), h: _syscalls[i]!))
            .OrderBy(r => r.info.IsRouted ? Name(r.info.Owner) : "~host").ThenByDescending(r => r.h.Count);
        foreach (var (info, h) in rows)
        {
            var owner = info.IsRouted ? Name(info.Owner) : "host";
            sb.AppendLine($"{owner,-8} {info.Name,-22} {info.Disposition.ToString().ToLowerInvariant(),-11} {h.Count,10} {h.Quantile(0.5),10:0.0} {h.Quantile(0.99),10:0.0}");
        }
        return sb.ToString();
    }

    /// <summary>
    /// The memory block --stats prints, from the MM server's accounting: the guest's committed memory (now, at its
    /// peak, and the limit), then per process the bytes mapped and committed at their peak over its life.
    /// </summary>
    public static string RenderMemory(UmlMicro.Contracts.Servers.MmUsage usage)
    {
        static string KiB(long bytes) => (bytes / 1024).ToString(System.Globalization.CultureInfo.InvariantCulture);
        var sb = new StringBuilder();
        sb.AppendLine($"memory (KiB): committed {KiB(usage.Committed)}, peak {KiB(usage.PeakCommitted)}, limit {(usage.Limit > 0 ? KiB(usage.Limit) : "none")}");
        sb.AppendLine($"{"pid",8} {"mapped",12} {"peak mapped",12} {"committed",12} {"peak commit",12}");
        foreach (var p in usage.Processes)
            sb.AppendLine($"{p.Vpid,8} {KiB(p.Mapped),12} {KiB(p.PeakMapped),12} {KiB(p.Committed),12} {KiB(p.PeakCommitted),12}");
        return sb.ToString();
    }

    /// <summary>The restarts block --stats prints: one line per restart, when, which server, why, how long the guest was held.</summary>
    public static string RenderRestarts(IReadOnlyList<UmlMicro.Supervisor.Servers.ServerRestart> restarts)
    {
        var sb = new StringBuilder();
        int retried = restarts.Sum(r => r.Retried);
        sb.AppendLine($"server restarts: {restarts.Count}, requests retried: {retried}");
        foreach (var r in restarts)
            sb.AppendLine($"  {r.At:HH:mm:ss.fff} {r.Server,-6} held the guest {r.Held.TotalMilliseconds:0.0} ms, replayed {r.Replayed} messages, retried {r.Retried}: {r.Why}");
        return sb.ToString();
    }

    public static string Name(Server s) => s switch
    {
        Server.Kernel => "kernel",
        Server.Vfs => "vfs",
        Server.Mm => "mm",
        Server.Sched => "sched",
        _ => s.ToString(),
    };
}
