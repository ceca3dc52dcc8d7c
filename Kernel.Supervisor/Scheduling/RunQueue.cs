namespace UmlMicro.Supervisor.Scheduling;

/// <summary>
/// The queue of threads waiting for a vCPU, in the order Sched's policy last gave: O(1) to add at either end, to take
/// the first and to take out any thread (each remembers its own node).
/// </summary>
internal sealed class RunQueue
{
    private readonly LinkedList<SchedEntity> _queue = new();

    public int Count => _queue.Count;

    /// <summary>The waiting threads, first in line first.</summary>
    public IEnumerable<SchedEntity> Threads => _queue;

    public void AddLast(SchedEntity thread) => thread.QueueNode = _queue.AddLast(thread);

    public void AddFirst(SchedEntity thread) => thread.QueueNode = _queue.AddFirst(thread);

    public SchedEntity? TakeFirst()
    {
        if (_queue.First is not { } first) return null;
        _queue.RemoveFirst();
        first.Value.QueueNode = null;
        return first.Value;
    }

    public void Remove(SchedEntity thread)
    {
        if (thread.QueueNode is { } node) _queue.Remove(node);
        thread.QueueNode = null;
    }
}
