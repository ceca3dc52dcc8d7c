namespace UmlMicro.Supervisor.Observability;

/// <summary>
/// Log-scaled latency buckets (about 4% wide, from 0.1 µs to beyond 100 s): constant memory and no
/// allocation per sample, so every syscall can be counted.
/// </summary>
internal sealed class LatencyHistogram
{
    private const double Base = 0.1;        // µs, lower edge of bucket 0
    private const double Growth = 1.04;
    private const int Buckets = 560;
    private static readonly double LogGrowth = Math.Log(Growth);

    private readonly long[] _counts = new long[Buckets];
    private long _total;

    public long Count => Interlocked.Read(ref _total);

    public void Record(double micros)
    {
        int b = micros <= Base ? 0 : Math.Min(Buckets - 1, (int)(Math.Log(micros / Base) / LogGrowth));
        Interlocked.Increment(ref _counts[b]);
        Interlocked.Increment(ref _total);
    }

    /// <summary>The latency below which <paramref name="q"/> (0..1) of the samples fall, in µs (bucket midpoint).</summary>
    public double Quantile(double q)
    {
        long total = Count;
        if (total == 0) return 0;
        long rank = (long)Math.Ceiling(q * total), seen = 0;
        for (int b = 0; b < Buckets; b++)
        {
            seen += Interlocked.Read(ref _counts[b]);
            if (seen >= Math.Max(rank, 1)) return Base * Math.Pow(Growth, b + 0.5);
        }
        return Base * Math.Pow(Growth, Buckets);
    }
}
