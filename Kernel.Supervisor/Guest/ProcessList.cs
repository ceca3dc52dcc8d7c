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
    private sealed record Kept(IReadOnlyList<ProcessFacts> Processes, IReadOnlyList<ProcPid> Pids, long Changes);

    private volatile Kept? _kept;

    /// <summary>The pids procfs lists (the VFS's view of the list) as Sched would give them now; false when only
    /// asking Sched can tell.</summary>
    public bool TryGetPids(out IReadOnlyList<ProcPid> pids)
    {
        var kept = _kept;
        pids = kept?.Pids ?? [];
        return kept is not null && kept.Changes == sched.Changes;
    }

    /// <summary>Asks Sched for the list, and keeps it.</summary>
    public IReadOnlyList<ProcessFacts> Ask() => AskKept().Processes;

    /// <summary>Asks Sched for the list, and gives the pids procfs lists.</summary>
    public IReadOnlyList<ProcPid> AskPids() => AskKept().Pids;

    private Kept AskKept()
    {
        long changes = sched.Changes; // read first: a change sent meanwhile makes the answer one not to keep
        var processes = sched.Call(s => s.ProcessesAsync());
        var kept = new Kept(processes, [.. processes.Select(p => new ProcPid(p.Vpid, p.HostPid, [.. p.Threads.Select(t => new ProcTid(t.Vtid, t.HostTid))]))], changes);
        _kept = kept;
        return kept;
    }
}
