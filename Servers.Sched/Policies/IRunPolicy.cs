using UmlMicro.Contracts.Servers;

namespace UmlMicro.Servers.Sched.Policies;

/// <summary>
/// A run policy: at each tick the supervisor sends (sched/vcpu_tick), it decides which running threads have used
/// their quantum and in which order the waiting ones get the vCPUs. The supervisor does the mechanics (stopping and
/// resuming threads, keeping the order between ticks); a policy only decides. It is called under the server's lock.
/// <para>
/// To add one: implement this interface (see <see cref="RoundRobinPolicy"/>, about 40 lines), give it a name in
/// <see cref="RunPolicies.Create"/>, and choose it with <c>Sched:Policy</c> in the config.
/// </para>
/// </summary>
internal interface IRunPolicy
{
    VcpuDecision Decide(VcpuTick tick);

    /// <summary>A thread ended: forget what is kept about it.</summary>
    void Forget(int vtid);
}

/// <summary>The policies this server knows, by the name <c>Sched:Policy</c> gives in sched/configure.</summary>
internal static class RunPolicies
{
    public static readonly string[] Names = ["round-robin", "fifo", "fair-share"];

    public static IRunPolicy? Create(string name, TimeSpan quantum) => name switch
    {
        "round-robin" => new RoundRobinPolicy(quantum),
        "fifo" => new FifoPolicy(),
        "fair-share" => new FairSharePolicy(quantum),
        _ => null,
    };
}

/// <summary>Linux's load weight of each nice value (kernel/sched/core.c, sched_prio_to_weight): every step is about 10% of CPU time.</summary>
internal static class NiceWeight
{
    private static readonly int[] Weights =
    [
        88761, 71755, 56483, 46273, 36291, 29154, 23254, 18705, 14949, 11916,
        9548, 7620, 6100, 4904, 3906, 3121, 2501, 1991, 1586, 1277,
        1024, 820, 655, 526, 423, 335, 272, 215, 172, 137,
        110, 87, 70, 56, 45, 36, 29, 23, 18, 15,
    ];

    public const int Nice0 = 1024;

    public static int Of(int nice) => Weights[Math.Clamp(nice, -20, 19) + 20];
}

/// <summary>
/// The waiting threads in the order they started to wait, as a policy that queues keeps it across ticks: a thread
/// joins at the back the first tick it is seen waiting (or at the front, when the policy says so) and leaves when
/// it is no longer waiting. Threads that start waiting between two ticks join longest-waiting first.
/// </summary>
internal sealed class ArrivalQueue
{
    private readonly List<int> _order = [];

    public IReadOnlyList<int> Order => _order;

    /// <summary>Brings the queue up to <paramref name="waiting"/>; <paramref name="first"/> says who joins at the front.</summary>
    public void Update(IEnumerable<VcpuThread> waiting, Func<VcpuThread, bool> first)
    {
        var now = waiting.ToDictionary(t => t.Vtid);
        _order.RemoveAll(vtid => !now.ContainsKey(vtid));
        var known = _order.ToHashSet();
        var joining = now.Values.Where(t => !known.Contains(t.Vtid)).OrderByDescending(t => t.WaitNs).ThenBy(t => t.Vtid).ToList();
        _order.InsertRange(0, joining.Where(first).Select(t => t.Vtid));
        _order.AddRange(joining.Where(t => !first(t)).Select(t => t.Vtid));
    }

    /// <summary>A thread that gives its vCPU up now goes to the back.</summary>
    public void AddLast(int vtid) => _order.Add(vtid);

    public void Remove(int vtid) => _order.Remove(vtid);
}
