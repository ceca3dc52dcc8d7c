using UmlMicro.Contracts.Servers;
using UmlMicro.Supervisor.Servers;

namespace UmlMicro.Supervisor.Guest;

/// <summary>
/// Sched's list of the guest's processes (sched/processes), which procfs needs for every path through /proc/PID:
/// kept while the supervisor has sent Sched nothing that may change it (<see cref="ServerLink{T}.Changes"/>), so a
/// guest that reads /proc/self/stat in a loop asks Sched once. Sched still makes every list.
/// </summary>
internal sealed class ProcessList(ServerLink<ISchedServer> sched)
{
    private sealed record Kept(IReadOnlyList<ProcessFacts> Processes, long Changes);

    private volatile Kept? _kept;

    /// <summary>The list as Sched would give it now; false when only asking Sched can tell.</summary>
    public bool TryGet(out IReadOnlyList<ProcessFacts> processes)
    {
        var kept = _kept;
        processes = kept?.Processes ?? [];
        return kept is not null && kept.Changes == sched.Changes;
    }

    /// <summary>
    /// <paramref name="processes"/> with every thread the supervisor holds in a job-control stop marked
    /// <see cref="ThreadFacts.Stopped"/>: Sched does not see job control, and the host shows any traced stop as 't'.
    /// </summary>
    public static IReadOnlyList<ProcessFacts> WithJobStops(IReadOnlyList<ProcessFacts> processes, TaskTable tasks)
    {
        if (tasks.JobStopped() is not { } stopped) return processes;
        return processes.Select(p => p.Threads.Any(t => stopped.Contains(t.HostTid))
            ? p with { Threads = p.Threads.Select(t => t with { Stopped = stopped.Contains(t.HostTid) }).ToList() }
            : p).ToList();
    }

    /// <summary>Asks Sched for the list, and keeps it.</summary>
    public IReadOnlyList<ProcessFacts> Ask()
    {
        long changes = sched.Changes; // read first: a change sent meanwhile makes the answer one not to keep
        var processes = sched.Call(s => s.ProcessesAsync());
        _kept = new Kept(processes, changes);
        return processes;
    }
}
