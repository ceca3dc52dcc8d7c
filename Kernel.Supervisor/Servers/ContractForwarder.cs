using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using UmlMicro.Contracts.Servers;
using static UmlMicro.Contracts.Servers.RestoreKind;

namespace UmlMicro.Supervisor.Servers;

/// <summary>
/// One method of a server contract as the link knows it: its C# name, its wire name, how a restarted server gets back
/// what it changed (null: a query, which changes nothing), whether it is sent as a notification ([Notification]) and
/// whether null is one of its answers, and how to call it on a server with its arguments as sent.
/// Written once per contract, in the contract's forwarder below, not found by reflection: the supervisor is a
/// NativeAOT executable. ContractForwarderTests fails when a table and its interface disagree.
/// </summary>
internal abstract class ContractMethod(string name, string wire, RestoreKind? restore, bool notification, bool answersNull)
{
    public string Name { get; } = name;
    public string Wire { get; } = wire;
    public RestoreKind? Restore { get; } = restore;

    /// <summary>Sent only as a JSON-RPC notification (<see cref="NotificationAttribute"/>); every other method only as a request.</summary>
    public bool Notification { get; } = notification;

    /// <summary>Null is a valid answer: the method answers nothing but its completion, or its result is nullable
    /// (checkpoint, vfs/guest_path). A null from any other is not its result: the server's mistake.</summary>
    public bool AnswersNull { get; } = answersNull;

    /// <summary>Calls the method on <paramref name="server"/> (a proxy of the contract) with <paramref name="args"/>.</summary>
    public abstract Task Invoke(object server, object?[] args);

    /// <summary>What a completed call of this method answered, or null for a method that answers nothing.</summary>
    public abstract object? AnswerOf(Task done);

    /// <summary>An answer of this method as JSON, from ContractJson's generated metadata (to compare two answers).</summary>
    public abstract string Json(object? answer);

    /// <summary>A request that answers nothing but its completion.</summary>
    public static ContractMethod Act<T>(string name, string wire, RestoreKind? restore, Func<T, object?[], Task> invoke) where T : class =>
        new Acting<T>(name, wire, restore, notification: false, invoke);

    /// <summary>A notification: never answered, never waited for.</summary>
    public static ContractMethod Tell<T>(string name, string wire, RestoreKind? restore, Func<T, object?[], Task> invoke) where T : class =>
        new Acting<T>(name, wire, restore, notification: true, invoke);

    /// <summary>A request that answers a <typeparamref name="TResult"/>; <paramref name="orNull"/>: or null.</summary>
    public static ContractMethod Ask<T, TResult>(string name, string wire, RestoreKind? restore, Func<T, object?[], Task<TResult>> invoke, bool orNull = false)
        where T : class =>
        new Asking<T, TResult>(name, wire, restore, orNull, invoke);

    private sealed class Acting<T>(string name, string wire, RestoreKind? restore, bool notification, Func<T, object?[], Task> invoke)
        : ContractMethod(name, wire, restore, notification, answersNull: true) where T : class
    {
        public override Task Invoke(object server, object?[] args) => invoke((T)server, args);
        public override object? AnswerOf(Task done) => null;
        public override string Json(object? answer) => "null";
    }

    private sealed class Asking<T, TResult>(string name, string wire, RestoreKind? restore, bool orNull, Func<T, object?[], Task<TResult>> invoke)
        : ContractMethod(name, wire, restore, notification: false, answersNull: orNull) where T : class
    {
        // Looked up when first needed (a replay): most guests never restart a server.
        private JsonTypeInfo<TResult>? _json;

        public override Task Invoke(object server, object?[] args) => invoke((T)server, args);
        public override object? AnswerOf(Task done) => ((Task<TResult>)done).Result;

        public override string Json(object? answer) => JsonSerializer.Serialize((TResult)answer!, _json ??=
            ContractJson.Default.GetTypeInfo(typeof(TResult)) as JsonTypeInfo<TResult>
            ?? throw new InvalidOperationException($"{typeof(TResult)} is missing from ContractJson"));
    }
}

/// <summary>
/// Stands in for a server's contract: forwards each call to the live connection's proxy and remembers which method
/// it was and with what, so that the link knows what it sent (for replay) from the same typed lambdas the handlers
/// write. One subclass per contract; each holds that contract's table of <see cref="ContractMethod"/>s, the one the
/// link uses for posts and replays too.
/// </summary>
internal abstract class ContractForwarder<T> : IKernelServer where T : class, IKernelServer
{
    internal T Target = null!;
    internal ContractMethod? LastMethod;
    internal object?[]? LastArgs;

    /// <summary>Every method of <typeparamref name="T"/>, by C# name.</summary>
    internal static readonly IReadOnlyDictionary<string, ContractMethod> Methods =
        (typeof(T) == typeof(IVfsServer) ? VfsForwarder.Table
            : typeof(T) == typeof(IMmServer) ? MmForwarder.Table
            : typeof(T) == typeof(ISchedServer) ? SchedForwarder.Table
            : throw new ArgumentException($"no contract table for {typeof(T)}")).ToDictionary(m => m.Name);

    internal static (T Proxy, ContractForwarder<T> Forwarder) Create(T target)
    {
        ContractForwarder<T> forwarder = typeof(T) == typeof(IVfsServer) ? (ContractForwarder<T>)(object)new VfsForwarder()
            : typeof(T) == typeof(IMmServer) ? (ContractForwarder<T>)(object)new MmForwarder()
            : typeof(T) == typeof(ISchedServer) ? (ContractForwarder<T>)(object)new SchedForwarder()
            : throw new ArgumentException($"no forwarder for {typeof(T)}");
        forwarder.Target = target;
        return ((T)(object)forwarder, forwarder);
    }

    protected Task Forward(ContractMethod m, params object?[] args)
    {
        LastMethod = m;
        LastArgs = args;
        return m.Invoke(Target, args);
    }

    protected Task<TResult> Forward<TResult>(ContractMethod m, params object?[] args) => (Task<TResult>)Forward(m, args);

    public Task<ServerHello> HelloAsync() => Forward<ServerHello>(KernelMethods.Hello);
    public Task ShutdownAsync() => Forward(KernelMethods.Shutdown);
    public Task<string?> CheckpointAsync() => Forward<string?>(KernelMethods.Checkpoint);
    public Task RestoreAsync(string checkpoint) => Forward(KernelMethods.Restore, checkpoint);
}

/// <summary>What every contract has (<see cref="IKernelServer"/>), the same in each table. Not in the generic
/// forwarder: each contract's table is made from these, and that forwarder's static table from the contract's.</summary>
internal static class KernelMethods
{
    public static readonly ContractMethod Hello = ContractMethod.Ask<IKernelServer, ServerHello>(nameof(IKernelServer.HelloAsync), "hello", null, (s, _) => s.HelloAsync());
    public static readonly ContractMethod Shutdown = ContractMethod.Tell<IKernelServer>(nameof(IKernelServer.ShutdownAsync), "shutdown", null, (s, _) => s.ShutdownAsync());
    public static readonly ContractMethod Checkpoint = ContractMethod.Ask<IKernelServer, string?>(nameof(IKernelServer.CheckpointAsync), "checkpoint", null, (s, _) => s.CheckpointAsync(), orNull: true);
    public static readonly ContractMethod Restore = ContractMethod.Act<IKernelServer>(nameof(IKernelServer.RestoreAsync), "restore", null, (s, a) => s.RestoreAsync((string)a[0]!));
    public static readonly ContractMethod[] Table = [Hello, Shutdown, Checkpoint, Restore];
}

internal sealed class VfsForwarder : ContractForwarder<IVfsServer>, IVfsServer
{
    private static readonly ContractMethod Configure = ContractMethod.Act<IVfsServer>(nameof(ConfigureAsync), "vfs/configure", Replay, (s, a) => s.ConfigureAsync((VfsConfig)a[0]!));
    private static readonly ContractMethod ProcessCreated = ContractMethod.Tell<IVfsServer>(nameof(ProcessCreatedAsync), "vfs/process_created", Replay, (s, a) => s.ProcessCreatedAsync((int)a[0]!, (int)a[1]!, (bool)a[2]!));
    private static readonly ContractMethod ProcessExited = ContractMethod.Tell<IVfsServer>(nameof(ProcessExitedAsync), "vfs/process_exited", Replay, (s, a) => s.ProcessExitedAsync((int)a[0]!));
    private static readonly ContractMethod Resolve = ContractMethod.Ask<IVfsServer, PathResolution>(nameof(ResolveAsync), "vfs/resolve", null, (s, a) => s.ResolveAsync((PathRequest)a[0]!));
    private static readonly ContractMethod Created = ContractMethod.Tell<IVfsServer>(nameof(CreatedAsync), "vfs/created", Journal, (s, a) => s.CreatedAsync((string)a[0]!));
    private static readonly ContractMethod Change = ContractMethod.Ask<IVfsServer, int>(nameof(ChangeAsync), "vfs/change", Journal, (s, a) => s.ChangeAsync((NameChange)a[0]!));
    private static readonly ContractMethod GetCwd = ContractMethod.Ask<IVfsServer, CwdResult>(nameof(GetCwdAsync), "vfs/getcwd", null, (s, a) => s.GetCwdAsync((int)a[0]!));
    private static readonly ContractMethod SetCwd = ContractMethod.Tell<IVfsServer>(nameof(SetCwdAsync), "vfs/set_cwd", Replay, (s, a) => s.SetCwdAsync((int)a[0]!, (string)a[1]!));
    private static readonly ContractMethod GuestPath = ContractMethod.Ask<IVfsServer, string?>(nameof(GuestPathAsync), "vfs/guest_path", null, (s, a) => s.GuestPathAsync((string)a[0]!), orNull: true);
    private static readonly ContractMethod AttributesChanged = ContractMethod.Tell<IVfsServer>(nameof(AttributesChangedAsync), "vfs/attributes_changed", null, (s, _) => s.AttributesChangedAsync());

    internal static readonly ContractMethod[] Table =
        [.. KernelMethods.Table, Configure, ProcessCreated, ProcessExited, Resolve, Created, Change, GetCwd, SetCwd, GuestPath, AttributesChanged];

    public Task ConfigureAsync(VfsConfig config) => Forward(Configure, config);
    public Task ProcessCreatedAsync(int parentVpid, int childVpid, bool shareFs) => Forward(ProcessCreated, parentVpid, childVpid, shareFs);
    public Task ProcessExitedAsync(int vpid) => Forward(ProcessExited, vpid);
    public Task<PathResolution> ResolveAsync(PathRequest request) => Forward<PathResolution>(Resolve, request);
    public Task CreatedAsync(string guestPath) => Forward(Created, guestPath);
    public Task<int> ChangeAsync(NameChange change) => Forward<int>(Change, change);
    public Task<CwdResult> GetCwdAsync(int vpid) => Forward<CwdResult>(GetCwd, vpid);
    public Task SetCwdAsync(int vpid, string hostPath) => Forward(SetCwd, vpid, hostPath);
    public Task<string?> GuestPathAsync(string hostPath) => Forward<string?>(GuestPath, hostPath);
    public Task AttributesChangedAsync() => Forward(AttributesChanged);
}

internal sealed class MmForwarder : ContractForwarder<IMmServer>, IMmServer
{
    private static readonly ContractMethod Configure = ContractMethod.Act<IMmServer>(nameof(ConfigureAsync), "mm/configure", Replay, (s, a) => s.ConfigureAsync((MmConfig)a[0]!));
    private static readonly ContractMethod SpaceCreated = ContractMethod.Tell<IMmServer>(nameof(SpaceCreatedAsync), "mm/space_created", Replay, (s, a) => s.SpaceCreatedAsync((int)a[0]!, (int)a[1]!, (bool)a[2]!));
    private static readonly ContractMethod SpaceExec = ContractMethod.Ask<IMmServer, SpaceGrant>(nameof(SpaceExecAsync), "mm/space_exec", Replay, (s, a) => s.SpaceExecAsync((int)a[0]!, (IReadOnlyList<Vma>)a[1]!));
    private static readonly ContractMethod SpaceExited = ContractMethod.Tell<IMmServer>(nameof(SpaceExitedAsync), "mm/space_exited", Replay, (s, a) => s.SpaceExitedAsync((int)a[0]!));
    private static readonly ContractMethod Record = ContractMethod.Tell<IMmServer>(nameof(RecordAsync), "mm/record", Replay, (s, a) => s.RecordAsync((MmEvent)a[0]!));
    private static readonly ContractMethod Maps = ContractMethod.Ask<IMmServer, IReadOnlyList<Vma>>(nameof(MapsAsync), "mm/maps", null, (s, a) => s.MapsAsync((int)a[0]!));
    private static readonly ContractMethod MmProcText = ContractMethod.Ask<IMmServer, ProcText>(nameof(ProcTextAsync), "mm/proc_text", null, (s, a) => s.ProcTextAsync((ProcTextRequest)a[0]!));
    private static readonly ContractMethod Reserve = ContractMethod.Ask<IMmServer, CommitReply>(nameof(ReserveAsync), "mm/reserve", Replay, (s, a) => s.ReserveAsync((CommitRequest)a[0]!));
    private static readonly ContractMethod Window = ContractMethod.Ask<IMmServer, PlacementWindow>(nameof(WindowAsync), "mm/window", Replay, (s, a) => s.WindowAsync((WindowRequest)a[0]!));
    private static readonly ContractMethod Brk = ContractMethod.Ask<IMmServer, BrkPlan>(nameof(BrkAsync), "mm/brk", null, (s, a) => s.BrkAsync((BrkRequest)a[0]!));
    private static readonly ContractMethod Usage = ContractMethod.Ask<IMmServer, MmUsage>(nameof(UsageAsync), "mm/usage", null, (s, _) => s.UsageAsync());

    internal static readonly ContractMethod[] Table =
        [.. KernelMethods.Table, Configure, SpaceCreated, SpaceExec, SpaceExited, Record, Maps, MmProcText, Reserve, Window, Brk, Usage];

    public Task ConfigureAsync(MmConfig config) => Forward(Configure, config);
    public Task SpaceCreatedAsync(int parentVpid, int childVpid, bool shared) => Forward(SpaceCreated, parentVpid, childVpid, shared);
    public Task<SpaceGrant> SpaceExecAsync(int vpid, IReadOnlyList<Vma> image) => Forward<SpaceGrant>(SpaceExec, vpid, image);
    public Task SpaceExitedAsync(int vpid) => Forward(SpaceExited, vpid);
    public Task RecordAsync(MmEvent e) => Forward(Record, e);
    public Task<IReadOnlyList<Vma>> MapsAsync(int vpid) => Forward<IReadOnlyList<Vma>>(Maps, vpid);
    public Task<ProcText> ProcTextAsync(ProcTextRequest request) => Forward<ProcText>(MmProcText, request);
    public Task<CommitReply> ReserveAsync(CommitRequest request) => Forward<CommitReply>(Reserve, request);
    public Task<PlacementWindow> WindowAsync(WindowRequest request) => Forward<PlacementWindow>(Window, request);
    public Task<BrkPlan> BrkAsync(BrkRequest request) => Forward<BrkPlan>(Brk, request);
    public Task<MmUsage> UsageAsync() => Forward<MmUsage>(Usage);
}

internal sealed class SchedForwarder : ContractForwarder<ISchedServer>, ISchedServer
{
    private static readonly ContractMethod Configure = ContractMethod.Act<ISchedServer>(nameof(ConfigureAsync), "sched/configure", Replay, (s, a) => s.ConfigureAsync((SchedConfig)a[0]!));
    private static readonly ContractMethod StartInit = ContractMethod.Ask<ISchedServer, TaskGrant>(nameof(StartInitAsync), "sched/start_init", Replay, (s, a) => s.StartInitAsync((int)a[0]!));
    private static readonly ContractMethod TaskCreated = ContractMethod.Ask<ISchedServer, TaskGrant>(nameof(TaskCreatedAsync), "sched/task_created", Replay, (s, a) => s.TaskCreatedAsync((TaskCreation)a[0]!));
    private static readonly ContractMethod ReservePids = ContractMethod.Ask<ISchedServer, IReadOnlyList<int>>(nameof(ReservePidsAsync), "sched/reserve_pids", Replay, (s, a) => s.ReservePidsAsync((int)a[0]!));
    private static readonly ContractMethod ReleasePids = ContractMethod.Tell<ISchedServer>(nameof(ReleasePidsAsync), "sched/release_pids", Replay, (s, a) => s.ReleasePidsAsync((IReadOnlyList<int>)a[0]!));
    private static readonly ContractMethod TaskStarted = ContractMethod.Tell<ISchedServer>(nameof(TaskStartedAsync), "sched/task_started", Replay, (s, a) => s.TaskStartedAsync((TaskCreation)a[0]!));
    private static readonly ContractMethod Exec = ContractMethod.Tell<ISchedServer>(nameof(ExecAsync), "sched/exec", Replay, (s, a) => s.ExecAsync((int)a[0]!));
    private static readonly ContractMethod TaskExited = ContractMethod.Tell<ISchedServer>(nameof(TaskExitedAsync), "sched/task_exited", Replay, (s, a) => s.TaskExitedAsync((TaskExit)a[0]!));
    private static readonly ContractMethod Reaped = ContractMethod.Tell<ISchedServer>(nameof(ReapedAsync), "sched/reaped", Replay, (s, a) => s.ReapedAsync((int)a[0]!));
    private static readonly ContractMethod Parent = ContractMethod.Ask<ISchedServer, int>(nameof(ParentAsync), "sched/parent", null, (s, a) => s.ParentAsync((int)a[0]!));
    private static readonly ContractMethod GroupChanged = ContractMethod.Tell<ISchedServer>(nameof(GroupChangedAsync), "sched/group_changed", Replay, (s, a) => s.GroupChangedAsync((GroupChange)a[0]!));
    private static readonly ContractMethod Cpus = ContractMethod.Ask<ISchedServer, int>(nameof(CpusAsync), "sched/cpus", null, (s, _) => s.CpusAsync());
    private static readonly ContractMethod Processes = ContractMethod.Ask<ISchedServer, IReadOnlyList<ProcessFacts>>(nameof(ProcessesAsync), "sched/processes", null, (s, _) => s.ProcessesAsync());
    private static readonly ContractMethod SchedProcText = ContractMethod.Ask<ISchedServer, ProcText>(nameof(ProcTextAsync), "sched/proc_text", null, (s, a) => s.ProcTextAsync((ProcTextRequest)a[0]!));
    private static readonly ContractMethod VcpuTick = ContractMethod.Ask<ISchedServer, VcpuDecision>(nameof(VcpuTickAsync), "sched/vcpu_tick", null, (s, a) => s.VcpuTickAsync((VcpuTick)a[0]!));
    private static readonly ContractMethod ChildSubreaper = ContractMethod.Tell<ISchedServer>(nameof(ChildSubreaperAsync), "sched/child_subreaper", Replay, (s, a) => s.ChildSubreaperAsync((int)a[0]!, (bool)a[1]!));

    private static readonly ContractMethod GetPriority = ContractMethod.Ask<ISchedServer, int>(nameof(GetPriorityAsync), "sched/getpriority", null, (s, a) => s.GetPriorityAsync((PriorityRequest)a[0]!));
    private static readonly ContractMethod SetPriority = ContractMethod.Ask<ISchedServer, PriorityAnswer>(nameof(SetPriorityAsync), "sched/setpriority", Replay, (s, a) => s.SetPriorityAsync((PriorityRequest)a[0]!));
    private static readonly ContractMethod SetAttr = ContractMethod.Ask<ISchedServer, int>(nameof(SetAttrAsync), "sched/setattr", Replay, (s, a) => s.SetAttrAsync((AttrRequest)a[0]!));
    private static readonly ContractMethod GetAttr = ContractMethod.Ask<ISchedServer, SchedAttr?>(nameof(GetAttrAsync), "sched/getattr", null, (s, a) => s.GetAttrAsync((int)a[0]!), orNull: true);

    internal static readonly ContractMethod[] Table =
        [.. KernelMethods.Table, Configure, StartInit, TaskCreated, ReservePids, ReleasePids, TaskStarted, Exec, TaskExited, Reaped, Parent, GroupChanged, Cpus, Processes, SchedProcText, VcpuTick, ChildSubreaper,
            GetPriority, SetPriority, SetAttr, GetAttr];

    public Task ConfigureAsync(SchedConfig config) => Forward(Configure, config);
    public Task<TaskGrant> StartInitAsync(int hostPid) => Forward<TaskGrant>(StartInit, hostPid);
    public Task<TaskGrant> TaskCreatedAsync(TaskCreation creation) => Forward<TaskGrant>(TaskCreated, creation);
    public Task<IReadOnlyList<int>> ReservePidsAsync(int count) => Forward<IReadOnlyList<int>>(ReservePids, count);
    public Task ReleasePidsAsync(IReadOnlyList<int> pids) => Forward(ReleasePids, pids);
    public Task TaskStartedAsync(TaskCreation creation) => Forward(TaskStarted, creation);
    public Task ExecAsync(int vpid) => Forward(Exec, vpid);
    public Task TaskExitedAsync(TaskExit exit) => Forward(TaskExited, exit);
    public Task ReapedAsync(int vpid) => Forward(Reaped, vpid);
    public Task<int> ParentAsync(int vpid) => Forward<int>(Parent, vpid);
    public Task GroupChangedAsync(GroupChange change) => Forward(GroupChanged, change);
    public Task<int> CpusAsync() => Forward<int>(Cpus);
    public Task<IReadOnlyList<ProcessFacts>> ProcessesAsync() => Forward<IReadOnlyList<ProcessFacts>>(Processes);
    public Task<ProcText> ProcTextAsync(ProcTextRequest request) => Forward<ProcText>(SchedProcText, request);
    public Task<VcpuDecision> VcpuTickAsync(VcpuTick tick) => Forward<VcpuDecision>(VcpuTick, tick);
    public Task ChildSubreaperAsync(int vpid, bool on) => Forward(ChildSubreaper, vpid, on);
    public Task<int> GetPriorityAsync(PriorityRequest request) => Forward<int>(GetPriority, request);
    public Task<PriorityAnswer> SetPriorityAsync(PriorityRequest request) => Forward<PriorityAnswer>(SetPriority, request);
    public Task<int> SetAttrAsync(AttrRequest request) => Forward<int>(SetAttr, request);
    public Task<SchedAttr?> GetAttrAsync(int vtid) => Forward<SchedAttr?>(GetAttr, vtid);
}
