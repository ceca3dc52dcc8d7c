using UmlMicro.Contracts.Servers;
using UmlMicro.Contracts.Syscalls;
using UmlMicro.Supervisor.Observability;
using UmlMicro.Supervisor.Servers;

namespace UmlMicro.Tests.Servers;

/// <summary>
/// The reincarnation service against real server processes: a server killed, hung or dying again and again, and
/// what the supervisor's link does about it. The guest-level story (a workload that never notices) is in the
/// chaos tests.
/// </summary>
public sealed class ReincarnationTests : IDisposable
{
    private const int HostInit = 7000;
    private readonly List<IDisposable> _links = [];
    private readonly KernelStats _stats = new();

    public void Dispose() => _links.ForEach(l => l.Dispose());

    private ServerLink<ISchedServer> Sched(RestartBudget budget, int callTimeoutMs = 10_000)
    {
        var launch = new ServerLaunch(new ServerCommand("{bin}/Servers.Sched"), RepoRoot.BinDir(), Contract.SchedName, Contract.SchedVersion,
            TimeSpan.FromSeconds(15), TimeSpan.FromMilliseconds(callTimeoutMs));
        var link = ServerLink<ISchedServer>.Start(Server.Sched, "sched", launch, _stats, budget);
        _links.Add(link);
        link.HandshakeAsync().GetAwaiter().GetResult();
        return link;
    }

    private static int ServerPid<T>(ServerLink<T> link) where T : class, IKernelServer => link.Call(s => s.HelloAsync()).ServerPid;

    /// <summary>Every thread of <paramref name="pid"/> in a stop (a thread that ended meanwhile: ask again).</summary>
    private static bool AllStopped(int pid)
    {
        try
        {
            return Directory.GetDirectories($"/proc/{pid}/task")
                .All(t => File.ReadAllText($"{t}/stat") is var st && st[(st.LastIndexOf(')') + 2)..].StartsWith('T'));
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static bool Alive(int pid) => File.Exists($"/proc/{pid}/stat") && !File.ReadAllText($"/proc/{pid}/stat").Contains(") Z ");

    private static void Fork(ServerLink<ISchedServer> sched, int creator) =>
        sched.Call(s => s.TaskCreatedAsync(new TaskCreation(creator, HostInit + 1000 + creator, CloneKind.Process, CloneParent: false)));

    [Fact]
    public void A_killed_server_is_started_again_with_everything_it_was_told_and_the_next_pid_is_the_same()
    {
        var budget = new RestartBudget(10, TimeSpan.FromMinutes(1));
        var sched = Sched(budget);
        sched.Call(s => s.StartInitAsync(HostInit));
        Fork(sched, 1);
        Fork(sched, 2);
        sched.Post(nameof(ISchedServer.TaskExitedAsync), new TaskExit(3, 0));
        var before = sched.Call(s => s.ProcessesAsync());
        int first = ServerPid(sched);

        HostProcesses.Signal(first, HostProcesses.SIGKILL);
        HostProcesses.Eventually(() => !Alive(first), TimeSpan.FromSeconds(5));

        Assert.Equivalent(before, sched.Call(s => s.ProcessesAsync()), strict: true);
        Assert.NotEqual(first, ServerPid(sched));
        Assert.Equal(new TaskGrant(4, 4), sched.Call(s => s.TaskCreatedAsync(new TaskCreation(1, HostInit + 4, CloneKind.Process, false))));
        var restart = Assert.Single(budget.Restarts);
        Assert.Equal("sched", restart.Server);
        Assert.Contains("lost its connection", restart.Why);
    }

    /// <summary>sched/setpriority and sched/setattr are replayed (their answers compared): a successor keeps every thread's
    /// scheduling attributes, and a set made while the server was dead reaches it too.</summary>
    [Fact]
    public void Scheduling_attributes_survive_a_restart()
    {
        var budget = new RestartBudget(10, TimeSpan.FromMinutes(1));
        var sched = Sched(budget);
        sched.Call(s => s.StartInitAsync(HostInit));
        Fork(sched, 1);
        var root = new TaskCreds(1, 0, 0, true, 0, 0);
        Assert.Equal(0, sched.Call(s => s.SetPriorityAsync(new PriorityRequest(root, 0, 0, -7, [root]))).Result);
        var fifo = new SchedAttr(1, 0, 0, 42);
        Assert.Equal(0, sched.Call(s => s.SetAttrAsync(new AttrRequest(root, 2, fifo, false, [root with { Vtid = 2 }]))));

        HostProcesses.Signal(ServerPid(sched), HostProcesses.SIGKILL);
        Assert.Equal(0, sched.Call(s => s.SetPriorityAsync(new PriorityRequest(root, 0, 2, 4, [root with { Vtid = 2 }]))).Result);

        Assert.Equal(-7, sched.Call(s => s.GetAttrAsync(1))!.Nice);
        Assert.Equal(fifo with { Nice = 4 }, sched.Call(s => s.GetAttrAsync(2)));
        Assert.Single(budget.Restarts);
    }

    [Fact]
    public void Notifications_sent_while_the_server_was_dead_reach_its_successor()
    {
        var budget = new RestartBudget(10, TimeSpan.FromMinutes(1));
        var sched = Sched(budget);
        sched.Call(s => s.StartInitAsync(HostInit));
        Fork(sched, 1);
        HostProcesses.Signal(ServerPid(sched), HostProcesses.SIGKILL);

        sched.Post(nameof(ISchedServer.GroupChangedAsync), new GroupChange(2, 0, NewSession: true));
        sched.Post(nameof(ISchedServer.TaskExitedAsync), new TaskExit(2, 0));
        sched.Post(nameof(ISchedServer.ReapedAsync), 2);

        Assert.Equal([1], sched.Call(s => s.ProcessesAsync()).Select(p => p.Vpid));
        Assert.Single(budget.Restarts);
    }

    [Fact]
    public void A_long_history_is_cut_at_a_checkpoint_and_the_successor_is_restored_from_it()
    {
        var budget = new RestartBudget(10, TimeSpan.FromMinutes(1));
        var sched = Sched(budget);
        sched.Call(s => s.StartInitAsync(HostInit));
        for (int i = 0; i < ServerLink<ISchedServer>.CheckpointEvery + 100; i++)
            sched.Post(nameof(ISchedServer.GroupChangedAsync), new GroupChange(1, 0, NewSession: i % 2 == 0));
        Fork(sched, 1);
        var before = sched.Call(s => s.ProcessesAsync());

        HostProcesses.Signal(ServerPid(sched), HostProcesses.SIGKILL);

        Assert.Equivalent(before, sched.Call(s => s.ProcessesAsync()), strict: true);
        Assert.True(Assert.Single(budget.Restarts).Replayed < 200, "the history before the checkpoint was replayed too");
    }

    [Fact]
    public void A_hung_server_is_killed_and_replaced_when_it_misses_the_answer_deadline()
    {
        var budget = new RestartBudget(10, TimeSpan.FromMinutes(1));
        var sched = Sched(budget, callTimeoutMs: 1000);
        sched.Call(s => s.StartInitAsync(HostInit));
        int hung = ServerPid(sched);

        HostProcesses.Signal(hung, HostProcesses.SIGSTOP);
        // A group stop takes hold when the thread that took the signal next runs: until then (a busy machine) the
        // server's other threads may still answer. The hang this test is about starts once every thread is stopped.
        Assert.True(HostProcesses.Eventually(() => AllStopped(hung), TimeSpan.FromSeconds(5)), "the server did not stop");

        Assert.Equal(0, sched.Call(s => s.ParentAsync(1)));
        Assert.True(HostProcesses.Eventually(() => !Alive(hung), TimeSpan.FromSeconds(5)), "the hung server was left running");
        var restart = Assert.Single(budget.Restarts);
        Assert.Contains("did not answer", restart.Why);
        Assert.Equal(1, restart.Retried);
        Assert.True(restart.Held >= TimeSpan.FromSeconds(1));
    }

    [Fact]
    public void A_server_that_keeps_dying_spends_the_budget_and_then_the_kernel_gives_up()
    {
        var budget = new RestartBudget(2, TimeSpan.FromMinutes(1));
        var sched = Sched(budget);
        sched.Call(s => s.StartInitAsync(HostInit));
        for (int i = 0; i < 2; i++)
        {
            HostProcesses.Signal(ServerPid(sched), HostProcesses.SIGKILL);
            Assert.Equal(0, sched.Call(s => s.ParentAsync(1)));
        }
        int last = ServerPid(sched);
        HostProcesses.Signal(last, HostProcesses.SIGKILL);

        var e = Assert.Throws<ServerCrashLoop>(() => sched.Call(s => s.ParentAsync(1)));
        Assert.Contains("restarted 2 times", e.Message);
        Assert.Equal(2, budget.Restarts.Count);
    }
}
