using System.Diagnostics;
using System.Numerics;
using UmlMicro.Supervisor.Guest;
using UmlMicro.Supervisor.Native;

namespace UmlMicro.Supervisor.Scheduling;

/// <summary>
/// Which host CPUs the tracer and the guest's tasks run on. Every trapped syscall is a hand-off between a task and
/// the tracer; on these VMs it costs 3–5× more when the two sit on different CPUs, because the other CPU is idle
/// and waking an idle vCPU is slow (bench/RESULTS.md, the floor's split and same-CPU rows). So while the guest has
/// work for one CPU only, the tracer and the guest's processes are <em>gathered</em> on one host CPU; when its
/// processes have work for more, they are <em>spread</em> over every CPU the supervisor was given, and gathered again
/// once the guest has used less than one CPU for a while. With one vCPU (or one host CPU) they are always gathered.
/// <para>
/// Only a process's first thread is ever gathered: a thread it starts may be parallel work (a worker, a spinner), and
/// gathered it would share one CPU with the others until the next tick saw it. A new thread gets every allowed CPU at
/// its first stop, before it runs; the host's scheduler places it. The gathering is for the syscall-heavy
/// single-threaded guest, a shell and the processes it starts one after another (bench/RESULTS.md, the spin rows).
/// </para>
/// <para>
/// Work is measured, not guessed, at each tick (ticks are asked for only while the guest has two processes or more, or
/// is spread): the CPU time each guest process used since the last tick, from its host CPU clock (a clock_gettime, no
/// /proc). Gathered, processes that share the one CPU between them and keep it busy want more than it. Spread, the
/// guest is gathered once its processes used less than <see cref="GatherBelow"/> of one CPU for <see cref="QuietToGather"/>. A process created after a change starts where its creator was; it is moved at its
/// first stop.
/// </para>
/// Every method is called on the tracer thread.
/// </summary>
internal sealed class CpuPlacement(int vcpus)
{
    /// <summary>A process is busy when it used more than this share of the time between two ticks...</summary>
    private const double ActiveShare = 0.1;

    /// <summary>...and the guest wants more than its one CPU when those processes used more than this of it themselves.
    /// The tracer's time does not count: two syscall-heavy processes spend most of theirs waiting for it, and spread they
    /// would pay a cross-CPU hand-off per stop (a pair of getpid loops took 3x as long spread as alone, 1.4x gathered).</summary>
    private const double SpreadAbove = 0.6;

    /// <summary>Spread: the guest is quiet while its processes use less than this many CPUs in all.</summary>
    private const double GatherBelow = 0.75;

    /// <summary>Spread tasks are gathered after this long quiet, however often the tracer ticked meanwhile.</summary>
    private static readonly TimeSpan QuietToGather = TimeSpan.FromMilliseconds(100);

    private ulong[] _allowed = [];
    private readonly Dictionary<int, long> _cpuTime = [];
    private long _lastTick;
    private TimeSpan _quiet;

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

    /// <summary>Live guest processes, counted when one starts or ends (not at every stop: the count walks the tasks).</summary>
    private int _processes = 1;

    /// <summary>Only a guest with two processes or more can have two busy gathered ones (its threads are never gathered).</summary>
    public bool NeedsTick => CanSpread && (_processes > 1 || Spread);

    /// <summary>A process started or ended.</summary>
    public void ProcessesChanged(TaskTable tasks) => _processes = tasks.Processes().Length;

    /// <summary>A new task, at its first stop: it inherited its creator's CPUs, which may predate a change, or which are the
    /// tracer's alone while the task is a thread.</summary>
    public void Place(GuestTask task)
    {
        if (CanSpread && !task.IsThreadGroupLeader) Interop.SetAffinity(task.HostTid, _allowed);
        else if (Changes > 0) Interop.SetAffinity(task.HostTid, Spread ? _allowed : TracerCpu());
    }

    /// <summary>Measures and decides; returns whether the tasks were moved.</summary>
    public bool Tick(GuestTask[] tasks)
    {
        long now = Stopwatch.GetTimestamp();
        var elapsed = Stopwatch.GetElapsedTime(_lastTick, now);
        double elapsedNs = elapsed.TotalNanoseconds;
        _lastTick = now;
        int active = 0;
        double cpus = 0;
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
            }
            _cpuTime[task.HostTid] = cpu;
        }
        if (_cpuTime.Count > tasks.Length * 2) Prune(tasks);

        if (!Spread)
        {
            // Several processes that share the one CPU (make -j4's compilers get a quarter each).
            if (active > 1 && cpus > SpreadAbove) return Move(tasks, spread: true);
            return false;
        }
        _quiet = cpus < GatherBelow ? _quiet + elapsed : TimeSpan.Zero;
        if (_quiet >= QuietToGather || tasks.Count(t => t.IsThreadGroupLeader) <= 1) return Move(tasks, spread: false);
        return false;
    }

    private bool Move(GuestTask[] tasks, bool spread)
    {
        Spread = spread;
        Changes++;
        _quiet = TimeSpan.Zero;
        if (spread) Interop.SetAffinity(0, _allowed);
        var mask = spread ? _allowed : Gather();
        foreach (var task in tasks)
            if (task.IsThreadGroupLeader) Interop.SetAffinity(task.HostTid, mask); // other threads keep every CPU
        return true;
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
