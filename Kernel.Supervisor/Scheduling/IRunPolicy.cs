namespace UmlMicro.Supervisor.Scheduling;

/// <summary>
/// A run policy: which waiting guest thread gets a free virtual CPU, and when a running one must give its
/// vCPU up. The <see cref="VcpuScheduler"/> does the mechanics (counting who really runs on the host,
/// stopping and resuming threads with ptrace); a policy only orders threads. It is called on the tracer
/// thread only, so it needs no locks, and it must be cheap: it runs at every tick and every hand-over.
/// <para>
/// To add a policy: implement this interface (see <see cref="RoundRobinPolicy"/>, about 40 lines), give it a
/// name in <see cref="RunPolicies.Create"/>, and choose it with <c>Sched:Policy</c> in the config.
/// </para>
/// </summary>
internal interface IRunPolicy
{
    /// <summary>The name in the config (<c>Sched:Policy</c>).</summary>
    string Name { get; }

    /// <summary>How many threads wait for a vCPU.</summary>
    int Waiting { get; }

    /// <summary>
    /// <paramref name="thread"/> wants a vCPU and has none: it is new, was preempted, yielded, or woke up while
    /// every vCPU was taken. It stays stopped until <see cref="PickNext"/> returns it.
    /// </summary>
    void Enqueue(SchedEntity thread, EnqueueReason reason);

    /// <summary>The waiting thread that gets a free vCPU now, taken off the queue; null when none waits.</summary>
    SchedEntity? PickNext();

    /// <summary>A waiting thread is gone (killed while it waited): forget it.</summary>
    void Remove(SchedEntity thread);

    /// <summary>
    /// Asked at every tick, only while threads wait, for each thread that is running: has it had its turn?
    /// True preempts it: it is stopped, queued again, and the next waiting thread gets its vCPU.
    /// </summary>
    bool QuantumExpired(SchedEntity running, TimeSpan ran);

    /// <summary>
    /// More threads run on the host than there are vCPUs (threads that were blocked in the host woke up on
    /// their own): which of <paramref name="running"/> stops and waits.
    /// </summary>
    SchedEntity ChooseVictim(IReadOnlyList<SchedEntity> running);
}

/// <summary>Why a thread waits for a vCPU.</summary>
internal enum EnqueueReason
{
    /// <summary>A new thread, when every vCPU was taken.</summary>
    New,
    /// <summary>Its quantum expired while others waited.</summary>
    Preempted,
    /// <summary>sched_yield while others waited.</summary>
    Yielded,
    /// <summary>It woke up in the host while every vCPU was taken.</summary>
    Overcommitted,
}

/// <summary>The run policies a config can name.</summary>
internal static class RunPolicies
{
    public static readonly string[] Names = ["round-robin", "fifo"];

    public static IRunPolicy Create(string name, TimeSpan quantum) => name switch
    {
        "round-robin" => new RoundRobinPolicy(quantum),
        "fifo" => new FifoPolicy(),
        _ => throw new ArgumentException($"unknown policy '{name}' ({string.Join(", ", Names)})"),
    };
}
