namespace UmlMicro.Supervisor.Scheduling;

/// <summary>
/// Round-robin with a time quantum, the default: threads wait in one FIFO queue; a running thread that has
/// used its quantum while others wait goes to the back of it. Nice scales the quantum the way Linux's CFS
/// scales a thread's share (its load weight relative to nice 0), so a nice 5 thread gets about a third of
/// the time of a nice 0 one when both are CPU-bound on one vCPU.
/// </summary>
internal sealed class RoundRobinPolicy(TimeSpan quantum) : IRunPolicy
{
    private readonly RunQueue _queue = new();

    public string Name => "round-robin";
    public int Waiting => _queue.Count;

    public void Enqueue(SchedEntity thread, EnqueueReason reason) => _queue.AddLast(thread);

    public SchedEntity? PickNext() => _queue.TakeFirst();

    public void Remove(SchedEntity thread) => _queue.Remove(thread);

    public bool QuantumExpired(SchedEntity running, TimeSpan ran) => ran >= QuantumOf(running.Nice);

    /// <summary>The one that has run longest gives way.</summary>
    public SchedEntity ChooseVictim(IReadOnlyList<SchedEntity> running) => running.MinBy(t => t.SliceStart)!;

    /// <summary>The quantum scaled by the nice value's load weight (kernel/sched/core.c, sched_prio_to_weight).</summary>
    public TimeSpan QuantumOf(int nice) => quantum * (NiceWeight.Of(nice) / (double)NiceWeight.Of(0));
}

/// <summary>Linux's load weight of each nice value: every step is about 10% of CPU time.</summary>
internal static class NiceWeight
{
    private static readonly int[] Weights =
    [
        88761, 71755, 56483, 46273, 36291, 29154, 23254, 18705, 14949, 11916,
        9548, 7620, 6100, 4904, 3906, 3121, 2501, 1991, 1586, 1277,
        1024, 820, 655, 526, 423, 335, 272, 215, 172, 137,
        110, 87, 70, 56, 45, 36, 29, 23, 18, 15,
    ];

    public static int Of(int nice) => Weights[Math.Clamp(nice, -20, 19) + 20];
}
