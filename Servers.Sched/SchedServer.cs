using System.Text.Json;
using System.Text.Json.Serialization;
using UmlMicro.Contracts.Servers;
using UmlMicro.Servers.Sched.Policies;

namespace UmlMicro.Servers.Sched;

/// <summary>
/// The scheduler server: the guest's virtual pid namespace, its process and thread tree, process groups and
/// sessions, and the number of virtual CPUs the guest sees.
/// <para>
/// Rebuilding after a crash: the server keeps no journal; its whole state is a function of the events the
/// supervisor reported, in their order. A restarted server is given sched/configure, then sched/start_init and
/// every sched/task_created, sched/exec, sched/task_exited, sched/reaped and sched/group_changed that the
/// supervisor saw, in the order it saw them. Pids are allocated deterministically (a cyclic cursor over the
/// numbers that are free at that point), so the replay grants the same pids and tids again, and the
/// supervisor can check each grant against the one it holds; numbers set aside ahead (sched/reserve_pids) are replayed
/// the same way, so a task that took one (sched/task_started) finds it set aside again. The replay must be the whole history, not only
/// the tasks that are still alive: the cursor and the numbers that are still held (zombies, groups and
/// sessions that outlived their leader) depend on what came before.
/// </para>
/// <para>
/// Virtual CPUs: the server holds their count and decides the run policy (Policies/): at each sched/vcpu_tick it says
/// which running threads have used their quantum and in which order the waiting ones get a vCPU. The supervisor
/// carries that out by ptrace and holds the vCPU grants. The policy's memory (its queue, fair-share's virtual
/// runtimes) is soft: it is neither replayed nor checkpointed, and a restarted server rebuilds it from the ticks that
/// follow, while the supervisor holds the guest with a built-in round-robin.
/// </para>
/// </summary>
internal sealed partial class SchedServer : KernelServerBase, ISchedServer
{
    // Requests are serialised: the server is a single-threaded kernel, one message at a time, as in MINIX.
    private readonly Lock gate = new();
    private readonly PidNamespace pids;
    private readonly ProcessTable table;
    private readonly Priorities priorities;
    private readonly ClassRanking classes = new();
    private int cpus = Environment.ProcessorCount;
    private IRunPolicy policy = new RoundRobinPolicy(TimeSpan.FromMilliseconds(10));
    // What sched/configure chose, kept in a checkpoint: a restored server is not sent sched/configure again.
    private string policyName = "round-robin";
    private long quantumNs = 10_000_000;

    public SchedServer(PidNamespace pids) : base(Contract.SchedName, Contract.SchedVersion)
    {
        this.pids = pids;
        table = new ProcessTable(pids);
        priorities = new Priorities(table, () => cpus);
    }

    private sealed record Checkpoint(int Cpus, int LastPid, Dictionary<int, int> PidReferences, IReadOnlyList<ProcessState> Processes,
        IReadOnlyList<int>? Reserved = null, string? Policy = null, long QuantumNs = 0);

    /// <summary>A checkpoint's JSON, generated at compile time (the server is a NativeAOT executable).</summary>
    [JsonSerializable(typeof(Checkpoint))]
    private sealed partial class CheckpointJson : JsonSerializerContext;

    public override Task<string?> CheckpointAsync()
    {
        lock (gate)
        {
            var (last, references) = pids.Save();
            return Task.FromResult<string?>(JsonSerializer.Serialize(
                new Checkpoint(cpus, last, references, table.Save(), [.. table.Reserved], policyName, quantumNs), CheckpointJson.Default.Checkpoint));
        }
    }

    public override Task RestoreAsync(string checkpoint)
    {
        var saved = ReadCheckpoint(checkpoint, CheckpointJson.Default.Checkpoint);
        // A checkpoint from before the policy was kept in it has none: the default, as that server then had after a restore.
        string savedPolicy = saved.Policy ?? "round-robin";
        long savedQuantumNs = saved.QuantumNs > 0 ? saved.QuantumNs : 10_000_000;
        var savedRunPolicy = CreatePolicy(savedPolicy, savedQuantumNs) ?? throw NotACheckpoint($"unknown policy '{savedPolicy}'");
        lock (gate)
        {
            if (pids.Started) throw ProtocolViolation.Of("a checkpoint is restored into a fresh server only");
            try
            {
                pids.Load(saved.LastPid, saved.PidReferences ?? []);
                table.Load(saved.Processes ?? [], saved.Reserved ?? []);
            }
            catch (ArgumentException e)
            {
                throw NotACheckpoint(e.Message);
            }
            cpus = saved.Cpus;
            (policy, policyName, quantumNs) = (savedRunPolicy, savedPolicy, savedQuantumNs);
        }
        return Task.CompletedTask;
    }

    public Task ConfigureAsync(SchedConfig config)
    {
        if (config.Cpus < 1)
            throw ProtocolViolation.Of($"a guest needs at least one virtual CPU, not {config.Cpus}");
        if (config.QuantumNs < 1)
            throw ProtocolViolation.Of($"a quantum must be positive, not {config.QuantumNs} ns");
        var chosen = CreatePolicy(config.Policy ?? "", config.QuantumNs)
            ?? throw ProtocolViolation.Of($"unknown policy '{config.Policy}' ({string.Join(", ", RunPolicies.Names)})");
        lock (gate)
        {
            cpus = config.Cpus;
            (policy, policyName, quantumNs) = (chosen, config.Policy!, config.QuantumNs);
        }
        return Task.CompletedTask;
    }

    public Task<TaskGrant> StartInitAsync(int hostPid)
    {
        lock (gate)
            return Task.FromResult(Grant(table.StartInit(hostPid)));
    }

    public Task<TaskGrant> TaskCreatedAsync(TaskCreation creation)
    {
        lock (gate)
            return Task.FromResult(Grant(table.Create(creation)));
    }

    public Task<IReadOnlyList<int>> ReservePidsAsync(int count)
    {
        if (count is < 1 or > MaxReserve) throw ProtocolViolation.Of($"set aside 1 to {MaxReserve} pids at a time, not {count}");
        lock (gate)
            return Task.FromResult(table.Reserve(count));
    }

    public Task ReleasePidsAsync(IReadOnlyList<int> numbers)
    {
        lock (gate)
            table.Release(numbers ?? throw ProtocolViolation.Of("no pids to release"));
        return Task.CompletedTask;
    }

    public Task TaskStartedAsync(TaskCreation creation)
    {
        lock (gate)
            table.Start(creation);
        return Task.CompletedTask;
    }

    private const int MaxReserve = 1024;

    public Task ExecAsync(int vpid)
    {
        lock (gate)
            table.Exec(vpid);
        return Task.CompletedTask;
    }

    public Task TaskExitedAsync(TaskExit exit)
    {
        lock (gate)
        {
            table.Exit(exit.Vtid, exit.Status);
            policy.Forget(exit.Vtid);
            classes.Forget(exit.Vtid);
        }
        return Task.CompletedTask;
    }

    public Task ReapedAsync(int vpid)
    {
        lock (gate)
            table.Reap(vpid);
        return Task.CompletedTask;
    }

    public Task<int> ParentAsync(int vpid)
    {
        lock (gate)
            return Task.FromResult(table.ParentOf(vpid));
    }

    public Task GroupChangedAsync(GroupChange change)
    {
        lock (gate)
            table.ChangeGroup(change);
        return Task.CompletedTask;
    }

    public Task<int> CpusAsync()
    {
        lock (gate)
            return Task.FromResult(cpus);
    }

    public Task<IReadOnlyList<ProcessFacts>> ProcessesAsync()
    {
        lock (gate)
            return Task.FromResult<IReadOnlyList<ProcessFacts>>(table.Processes
                .OrderBy(p => p.Pid)
                .Select(p => new ProcessFacts(p.Pid, p.HostPid, p.ParentPid, p.Pgid, p.Sid,
                    p.Threads.Values.OrderBy(t => t.Tid).Select(t => new ThreadFacts(t.Tid, t.HostTid)).ToList()))
                .ToList());
    }

    public Task<ProcText> ProcTextAsync(ProcTextRequest request)
    {
        if (request?.File is null || request.HostText is null) throw ProtocolViolation.Of("a procfs text request names its file and carries the host's text");
        lock (gate)
            return Task.FromResult(ProcStatText.Render(request, table));
    }

    public Task<VcpuDecision> VcpuTickAsync(VcpuTick tick)
    {
        if (tick.Threads.Any(t => t is null) || tick.Threads.DistinctBy(t => t.Vtid).Count() != tick.Threads.Count)
            throw ProtocolViolation.Of("a tick lists each thread once");
        // The tick's nice values are the host's; the policy weighs by the ones Sched keeps.
        lock (gate)
            return Task.FromResult(classes.Decide(tick with { Threads = [.. tick.Threads.Select(t => t with { Nice = AttrOf(t.Vtid).Nice })] }, AttrOf, policy));
    }

    private SchedAttr AttrOf(int vtid) => priorities.GetAttr(vtid) ?? Priorities.Default;

    public Task<int> GetPriorityAsync(PriorityRequest request)
    {
        lock (gate)
            return Task.FromResult(priorities.GetPriority(request ?? throw ProtocolViolation.Of("no request")));
    }

    public Task<PriorityAnswer> SetPriorityAsync(PriorityRequest request)
    {
        lock (gate)
            return Task.FromResult(priorities.SetPriority(request ?? throw ProtocolViolation.Of("no request")));
    }

    public Task<int> SetAttrAsync(AttrRequest request)
    {
        lock (gate)
            return Task.FromResult(priorities.SetAttr(request ?? throw ProtocolViolation.Of("no request")));
    }

    public Task<SchedAttr?> GetAttrAsync(int vtid)
    {
        lock (gate)
            return Task.FromResult(priorities.GetAttr(vtid));
    }

    public Task ChildSubreaperAsync(int vpid, bool on)
    {
        lock (gate)
            table.SetChildSubreaper(vpid, on);
        return Task.CompletedTask;
    }

    private static TaskGrant Grant(GuestThread thread) => new(thread.Process.Pid, thread.Tid);

    private static IRunPolicy? CreatePolicy(string name, long quantumNs) =>
        RunPolicies.Create(name, TimeSpan.FromTicks(Math.Max(1, quantumNs / 100)));
}
