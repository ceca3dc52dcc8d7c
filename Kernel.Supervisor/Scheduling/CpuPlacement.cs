using System.Diagnostics;
using System.Numerics;
using UmlMicro.Supervisor.Guest;
using UmlMicro.Supervisor.Native;

namespace UmlMicro.Supervisor.Scheduling;

/// <summary>
/// Which host CPUs the tracer and the guest's tasks run on. Every trapped syscall is a hand-off between a task and
/// the tracer; on these VMs it costs 3–5× more when the two sit on different CPUs, because the other CPU is idle
/// and waking an idle vCPU is slow (bench/RESULTS.md, the floor's split and same-CPU rows). So while the guest has
/// work for one CPU only, the tracer and all its tasks are <em>gathered</em> on one host CPU; when the guest has work
/// for more, they are <em>spread</em> over every CPU the supervisor was given, and gathered again once the guest has
/// used less than one CPU for a while. With one vCPU (or one host CPU) they are always gathered.
/// <para>
/// Work is measured, not guessed, at each tick (ticks are asked for only while the guest has two tasks or more):
/// the CPU time each guest process used since the last tick, from its host CPU clock (a clock_gettime, no /proc).
/// Gathered, processes that share the one CPU between them and keep it busy want more than it; so does one process
/// with two threads runnable at once (read from /proc/TID/stat only for the busiest process). Spread, the guest is
/// gathered once its processes used less than <see cref="GatherBelow"/> of one CPU for <see cref="QuietTicksToGather"/>
/// ticks in a row. A task created after a change starts where its creator was; it is moved at its first stop.
/// </para>
/// Every method is called on the tracer thread.
/// </summary>
internal sealed class CpuPlacement(int vcpus)
{
    /// <summary>Gathered: a process takes part when it used more than this share of the time between two ticks...</summary>
    private const double ActiveShare = 0.1;

    /// <summary>...and the guest wants more than its one CPU when processes that took part used more than this together.</summary>
    private const double SpreadAbove = 0.6;

    /// <summary>A process that used more than this share may have two threads that want to run.</summary>
    private const double BusyShare = 0.3;

    /// <summary>Spread: the guest is quiet in a tick in which its processes used less than this many CPUs in all.</summary>
    private const double GatherBelow = 0.75;

    /// <summary>Spread tasks are gathered after this many quiet ticks in a row (about 0.1 s with the default quantum).</summary>
    private const int QuietTicksToGather = 20;

    private ulong[] _allowed = [];
    private readonly Dictionary<int, long> _cpuTime = [];
    private long _lastTick;
    private int _quietTicks;

    /// <summary>Tasks are spread over the allowed CPUs (else gathered on the tracer's).</summary>
    public bool Spread { get; private set; }

    /// <summary>Placement changes so far; 0 while every task still sits where it was started.</summary>
    public int Changes { get; private set; }

    /// <summary>More than one host CPU to use, and more than one vCPU to use them for.</summary>
    public bool CanSpread { get; private set; }

    /// <summary>On the tracer thread, before the guest is started: the tracer (and so the guest it starts) is gathered on its current CPU.</summary>
    public void Start()
    {
        _allowed = Interop.GetAffinity();
        int allowedCpus = 0;
        foreach (ulong word in _allowed) allowedCpus += BitOperations.PopCount(word);
        CanSpread = vcpus > 1 && allowedCpus > 1;
        Gather();
        _lastTick = Stopwatch.GetTimestamp();
    }

    /// <summary>Only a guest with two tasks or more can have two busy ones.</summary>
    public bool NeedsTick(int tasks) => CanSpread && (tasks > 1 || Spread);

    /// <summary>A new task, at its first stop: it inherited its creator's CPUs, which may predate a change.</summary>
    public void Place(GuestTask task)
    {
        if (Changes > 0) Interop.SetAffinity(task.HostTid, Spread ? _allowed : TracerCpu());
    }

    public void Tick(GuestTask[] tasks)
    {
        long now = Stopwatch.GetTimestamp();
        double elapsedNs = Stopwatch.GetElapsedTime(_lastTick, now).TotalNanoseconds;
        _lastTick = now;
        int active = 0;
        double cpus = 0, most = 0;
        GuestTask? busiest = null;
        foreach (var task in tasks)
        {
            if (!task.IsThreadGroupLeader) continue;
            long cpu = Interop.ProcessCpuTime(task.HostTid);
            if (cpu < 0) continue;
            if (_cpuTime.TryGetValue(task.HostTid, out long before))
            {
                double share = (cpu - before) / elapsedNs;
                cpus += share;
                if (share > ActiveShare) active++;
                if (share > most) (most, busiest) = (share, task);
            }
            _cpuTime[task.HostTid] = cpu;
        }
        if (_cpuTime.Count > tasks.Length * 2) Prune(tasks);

        if (!Spread)
        {
            // Several processes that share the one CPU (make -j4's compilers get a quarter each), or one whose threads do.
            if ((active > 1 && cpus > SpreadAbove) || (most > BusyShare && RunnableThreads(busiest!, tasks) > 1)) Move(tasks, spread: true);
            return;
        }
        _quietTicks = cpus < GatherBelow ? _quietTicks + 1 : 0;
        if (_quietTicks >= QuietTicksToGather || tasks.Length <= 1) Move(tasks, spread: false);
    }

    /// <summary>How many threads of <paramref name="process"/> the host has running or waiting for a CPU right now.</summary>
    private static int RunnableThreads(GuestTask process, GuestTask[] tasks)
    {
        int n = 0;
        foreach (var t in tasks)
            if (t.HostTgid == process.HostTgid && HostThreadState.Read(t.HostTid) is { Running: true }) n++;
        return n;
    }

    private void Move(GuestTask[] tasks, bool spread)
    {
        Spread = spread;
        Changes++;
        _quietTicks = 0;
        if (spread) Interop.SetAffinity(0, _allowed);
        var mask = spread ? _allowed : Gather();
        foreach (var task in tasks) Interop.SetAffinity(task.HostTid, mask);
    }

    /// <summary>Pins the tracer thread to the CPU it is on now and returns that CPU's mask.</summary>
    private ulong[] Gather()
    {
        var mask = TracerCpu();
        Interop.SetAffinity(0, mask);
        return mask;
    }

    private static ulong[] TracerCpu()
    {
        int cpu = Math.Max(0, Interop.sched_getcpu());
        var mask = new ulong[Interop.CpuMaskWords];
        mask[cpu / 64] = 1UL << (cpu % 64);
        return mask;
    }

    private void Prune(GuestTask[] tasks)
    {
        var live = new HashSet<int>(tasks.Select(t => t.HostTid));
        foreach (int tid in _cpuTime.Keys.Where(t => !live.Contains(t)).ToList()) _cpuTime.Remove(tid);
    }
}
