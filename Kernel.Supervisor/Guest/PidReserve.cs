namespace UmlMicro.Supervisor.Guest;

/// <summary>
/// Numbers Sched set aside for the supervisor's next tasks (sched/reserve_pids), so that a clone needs no round trip.
/// Sched chose them, in the order it would grant them; the supervisor gives one to a new task only where Sched's own
/// rule would: with a pid namespace on the host, the number the host gave the task (the host allocates upwards too,
/// so the numbers below it will not come again before a wrap at pid_max, and are given back); without one, the next.
/// </summary>
internal sealed class PidReserve
{
    /// <summary>How many Sched is asked for at once, and below how many it is asked again.</summary>
    public const int Batch = 64, Low = 8;

    private readonly SortedSet<int> _numbers = new();

    public int Count => _numbers.Count;

    public void Add(IEnumerable<int> numbers) => _numbers.UnionWith(numbers);

    /// <summary>
    /// Takes <paramref name="nsPid"/> (0: the next number) when it was set aside. <paramref name="passed"/> are the
    /// numbers below it, taken or not: the host has gone past them, and they are Sched's again.
    /// </summary>
    public bool TryTake(int nsPid, out int taken, out List<int> passed)
    {
        taken = nsPid == 0 ? (_numbers.Count > 0 ? _numbers.Min : 0) : nsPid;
        passed = taken > 0 ? [.. _numbers.GetViewBetween(int.MinValue, taken - 1)] : [];
        _numbers.ExceptWith(passed);
        return taken > 0 && _numbers.Remove(taken);
    }
}
