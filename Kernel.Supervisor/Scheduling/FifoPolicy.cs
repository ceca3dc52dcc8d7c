namespace UmlMicro.Supervisor.Scheduling;

/// <summary>
/// First come, first served, without preemption (like SCHED_FIFO at one priority): a thread keeps its vCPU
/// until it blocks in the host, yields or exits; the longest-waiting thread gets the next free one. When
/// threads wake up in excess, the one that got its vCPU last gives it back, and it goes to the front of the
/// queue, as a SCHED_FIFO thread that is preempted stays at the head of its list.
/// </summary>
internal sealed class FifoPolicy : IRunPolicy
{
    private readonly RunQueue _queue = new();

    public string Name => "fifo";
    public int Waiting => _queue.Count;

    public void Enqueue(SchedEntity thread, EnqueueReason reason)
    {
        if (reason == EnqueueReason.Overcommitted) _queue.AddFirst(thread);
        else _queue.AddLast(thread);
    }

    public SchedEntity? PickNext() => _queue.TakeFirst();

    public void Remove(SchedEntity thread) => _queue.Remove(thread);

    public bool QuantumExpired(SchedEntity running, TimeSpan ran) => false;

    public SchedEntity ChooseVictim(IReadOnlyList<SchedEntity> running) => running.MaxBy(t => t.GrantedAt)!;
}
