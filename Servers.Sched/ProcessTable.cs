using StreamJsonRpc;
using UmlMicro.Contracts.Linux;
using UmlMicro.Contracts.Servers;

namespace UmlMicro.Servers.Sched;

/// <summary>A live guest thread. Its process is the thread group it belongs to.</summary>
internal sealed class GuestThread(int tid, int hostTid, GuestProcess process)
{
    public int Tid { get; } = tid;

    /// <summary>Only for traces and logs: the supervisor keeps the host/guest mapping itself.</summary>
    public int HostTid { get; } = hostTid;

    public GuestProcess Process { get; } = process;

    /// <summary>Its scheduling attributes (<see cref="Priorities"/>): inherited at its creation, kept across execve.</summary>
    public SchedAttr Attr { get; set; } = Priorities.Default;
}

/// <summary>A guest process (thread group): alive while it has threads, a zombie from its last thread's exit
/// until its parent reaps it.</summary>
internal sealed class GuestProcess(int pid, int hostPid, int parentPid, int pgid, int sid)
{
    public int Pid { get; } = pid;

    /// <summary>The host tid of the leader, which is the host pid; after an exec the surviving thread has it,
    /// whichever thread called execve, because Linux's de-thread hands the leader's ids to the exec'ing thread.</summary>
    public int HostPid { get; } = hostPid;

    public int ParentPid { get; set; } = parentPid;
    public int Pgid { get; set; } = pgid;
    public int Sid { get; set; } = sid;

    /// <summary>PR_SET_CHILD_SUBREAPER: orphaned descendants come to this process rather than to init. Kept across
    /// execve, not inherited by a fork, as Linux keeps it in the signal struct.</summary>
    public bool ChildSubreaper { get; set; }

    /// <summary>The wait status of the leader's exit, which is what wait reports for the process: with
    /// exit_group every thread carries the group's code, and a traced leader is reported last.</summary>
    public int? ExitStatus { get; set; }

    public Dictionary<int, GuestThread> Threads { get; } = new();
    public HashSet<int> Children { get; } = new();

    public bool IsZombie => Threads.Count == 0;
}

/// <summary>
/// The process and thread tree of the guest (MINIX's mproc table, Linux's task list): who exists, who is whose
/// parent, which group and session each process is in. Every number it hands out comes from one
/// <see cref="PidNamespace"/> and is given back when nothing names it any more.
/// </summary>
/// <summary>A process as a checkpoint keeps it.</summary>
internal sealed record ProcessState(int Pid, int HostPid, int ParentPid, int Pgid, int Sid, int? ExitStatus,
    IReadOnlyList<ThreadState> Threads, IReadOnlyList<int> Children, bool ChildSubreaper = false);

internal sealed record ThreadState(int Tid, int HostTid, SchedAttr? Attr = null);

internal sealed class ProcessTable(PidNamespace pids)
{
    public const int InitPid = 1;

    private readonly Dictionary<int, GuestProcess> processes = new();
    private readonly Dictionary<int, GuestThread> threads = new();
    // Numbers set aside for the supervisor's next tasks (sched/reserve_pids); each holds its reference until a task
    // takes it or the supervisor gives it back.
    private readonly SortedSet<int> reserved = new();

    public IReadOnlyCollection<int> Reserved => reserved;

    public IEnumerable<GuestProcess> Processes => processes.Values;

    public bool TryGetProcess(int pid, out GuestProcess process) => processes.TryGetValue(pid, out process!);

    public bool TryGetThread(int tid, out GuestThread thread) => threads.TryGetValue(tid, out thread!);

    /// <summary>The first guest process: pid 1, and leader of its own group and session, since nothing outside
    /// the guest is visible to it.</summary>
    public GuestThread StartInit(int hostPid)
    {
        if (pids.Started)
            throw ProtocolViolation.Of("init was already started in this pid namespace");
        int pid = pids.Alloc();
        pids.Get(pid);
        pids.Get(pid);
        var init = new GuestProcess(pid, hostPid, parentPid: 0, pgid: pid, sid: pid);
        return AddThread(init, pid, hostPid);
    }

    /// <summary>Sets aside up to <paramref name="count"/> numbers, the ones the next tasks would get, in that order.</summary>
    public IReadOnlyList<int> Reserve(int count)
    {
        var taken = new List<int>();
        for (int i = 0; i < count && pids.Alloc() is var nr and > 0; i++)
        {
            reserved.Add(nr);
            taken.Add(nr);
        }
        return taken;
    }

    /// <summary>Every number must be set aside, once: a refusal changes nothing.</summary>
    public void Release(IEnumerable<int> numbers)
    {
        var list = numbers.ToList();
        var seen = new HashSet<int>();
        foreach (int nr in list)
            if (!reserved.Contains(nr) || !seen.Add(nr)) throw ProtocolViolation.Of($"pid {nr} was not set aside");
        foreach (int nr in list)
        {
            reserved.Remove(nr);
            pids.Put(nr);
        }
    }

    /// <summary>A task made with a number set aside for it: the number is its tid, and its pid unless it is a thread.</summary>
    public GuestThread Start(TaskCreation creation)
    {
        if (!reserved.Contains(creation.Pid)) throw ProtocolViolation.Of($"pid {creation.Pid} was not set aside");
        return Create(creation);
    }

    public GuestThread Create(TaskCreation creation)
    {
        var creatorThread = LiveThread(creation.CreatorVtid);
        var creator = creatorThread.Process;
        var attr = Priorities.Inherit(creatorThread.Attr);
        if (creation.Kind == CloneKind.Thread)
            return AddThread(creator, Alloc(creation.Pid), creation.HostTid, attr);

        int parentPid = creation.CloneParent ? creator.ParentPid : creator.Pid;
        if (parentPid == 0)
            throw ProtocolViolation.Of($"pid {creator.Pid} has no parent to share: Linux refuses CLONE_PARENT from a namespace's init with EINVAL");
        int pid = Alloc(creation.Pid);
        pids.Get(creator.Pgid);
        pids.Get(creator.Sid);
        var child = new GuestProcess(pid, creation.HostTid, parentPid, creator.Pgid, creator.Sid);
        processes[parentPid].Children.Add(pid);
        return AddThread(child, pid, creation.HostTid, attr);
    }

    /// <summary>execve succeeded in <paramref name="pid"/>: as Linux's de_thread, every other thread is gone and the
    /// exec'ing thread carries on with the leader's ids.</summary>
    public void Exec(int pid)
    {
        var process = LiveProcess(pid);
        // sched/exec does not say which thread called execve: when the leader is gone, the survivor takes the
        // attributes of the lowest-numbered thread, the leader's own otherwise.
        var attr = process.Threads.Values.OrderBy(t => t.Tid != pid).ThenBy(t => t.Tid).First().Attr;
        foreach (var thread in process.Threads.Values.Where(t => t.Tid != pid).ToList())
        {
            process.Threads.Remove(thread.Tid);
            threads.Remove(thread.Tid);
            pids.Put(thread.Tid);
        }
        if (!process.Threads.ContainsKey(pid))
        {
            // The leader had exited before a sibling exec'ed; its number was kept as the pid.
            var leader = new GuestThread(pid, process.HostPid, process) { Attr = attr };
            process.Threads.Add(pid, leader);
            threads.Add(pid, leader);
            process.ExitStatus = null;
        }
    }

    public void Exit(int tid, int status)
    {
        var thread = LiveThread(tid);
        var process = thread.Process;
        process.Threads.Remove(tid);
        threads.Remove(tid);
        if (tid == process.Pid)
            process.ExitStatus = status; // the leader's number lives on as the pid until the reap
        else
            pids.Put(tid);
        if (process.IsZombie)
            Orphan(process);
    }

    public void Reap(int pid)
    {
        if (!processes.TryGetValue(pid, out var process))
            throw ProtocolViolation.Of($"no process {pid} to reap");
        if (!process.IsZombie)
            throw ProtocolViolation.Of($"process {pid} is still running and cannot be reaped");
        if (processes.TryGetValue(process.ParentPid, out var parent))
            parent.Children.Remove(pid);
        processes.Remove(pid);
        pids.Put(pid);
        pids.Put(process.Pgid);
        pids.Put(process.Sid);
    }

    /// <summary>The parent's pid, 0 for init, or -ESRCH for a pid that names no process.</summary>
    public int ParentOf(int pid) => processes.TryGetValue(pid, out var process) ? process.ParentPid : -Errno.ESRCH;

    /// <summary>Records a setpgid (a pgid of 0 means the process's own pid, as setpgid takes it) or a setsid.</summary>
    public void ChangeGroup(GroupChange change)
    {
        var process = LiveProcess(change.Vpid);
        int pid = process.Pid;
        int pgid = change.NewSession || change.Vpgid == 0 ? pid : change.Vpgid;
        int sid = change.NewSession ? pid : process.Sid;
        if (pgid != pid && !processes.Values.Any(p => p.Pgid == pgid))
            throw ProtocolViolation.Of($"process group {change.Vpgid} does not exist");
        // Take the new references before dropping the old ones: they may be the same numbers.
        pids.Get(pgid);
        pids.Get(sid);
        pids.Put(process.Pgid);
        pids.Put(process.Sid);
        process.Pgid = pgid;
        process.Sid = sid;
    }

    public IReadOnlyList<ProcessState> Save() => [.. processes.Values.OrderBy(p => p.Pid).Select(p => new ProcessState(
        p.Pid, p.HostPid, p.ParentPid, p.Pgid, p.Sid, p.ExitStatus,
        [.. p.Threads.Values.OrderBy(t => t.Tid).Select(t => new ThreadState(t.Tid, t.HostTid, t.Attr))], [.. p.Children.Order()], p.ChildSubreaper))];

    /// <summary>The table as a checkpoint saved it (the pid namespace is loaded beside it).</summary>
    public void Load(IEnumerable<ProcessState> saved, IEnumerable<int> reservedNumbers)
    {
        processes.Clear();
        threads.Clear();
        reserved.Clear();
        foreach (int nr in reservedNumbers)
        {
            if (!pids.IsTaken(nr)) throw new ArgumentException($"pid {nr} is set aside but not taken");
            reserved.Add(nr);
        }
        foreach (var p in saved)
        {
            var process = new GuestProcess(p.Pid, p.HostPid, p.ParentPid, p.Pgid, p.Sid) { ExitStatus = p.ExitStatus, ChildSubreaper = p.ChildSubreaper };
            process.Children.UnionWith(p.Children ?? []);
            processes.Add(p.Pid, process);
            foreach (var t in p.Threads ?? [])
            {
                // A checkpoint from before the attributes were kept has none: every thread was at the default.
                var thread = new GuestThread(t.Tid, t.HostTid, process) { Attr = t.Attr ?? Priorities.Default };
                process.Threads.Add(t.Tid, thread);
                threads.Add(t.Tid, thread);
            }
        }
    }

    /// <summary>The number the host gave the task (<paramref name="wanted"/>, its pid in the guest's pid namespace) when it
    /// is free here, so that pids in what the host hands the guest are right as they are; the next free one otherwise.</summary>
    private int Alloc(int wanted)
    {
        if (wanted > 0 && reserved.Remove(wanted)) return wanted; // its reference passes to the task
        int nr = wanted > 0 && pids.TryTake(wanted) ? wanted : pids.Alloc();
        if (nr == 0)
            throw new LocalRpcException("every guest pid is taken (the host made the task, the guest's fork would have failed with EAGAIN)");
        return nr;
    }

    private GuestThread AddThread(GuestProcess process, int tid, int hostTid, SchedAttr? attr = null)
    {
        var thread = new GuestThread(tid, hostTid, process) { Attr = attr ?? Priorities.Default };
        processes.TryAdd(process.Pid, process);
        process.Threads.Add(tid, thread);
        threads.Add(tid, thread);
        return thread;
    }

    public void SetChildSubreaper(int pid, bool on) => LiveProcess(pid).ChildSubreaper = on;

    /// <summary>The children of a process whose last thread exited go to its nearest living ancestor that is a child
    /// subreaper, else to init, as forget_original_parent's find_new_reaper does. When init itself is gone there is no
    /// reaper: in Linux the namespace dies with its init, and the supervisor ends the rest of the guest.</summary>
    private void Orphan(GuestProcess dying)
    {
        GuestProcess? reaper = processes.TryGetValue(InitPid, out var init) && !init.IsZombie ? init : null;
        for (int up = dying.ParentPid; up != 0 && up != InitPid && processes.TryGetValue(up, out var ancestor); up = ancestor.ParentPid)
            if (ancestor.ChildSubreaper && !ancestor.IsZombie)
            {
                reaper = ancestor;
                break;
            }
        foreach (int childPid in dying.Children)
        {
            processes[childPid].ParentPid = reaper?.Pid ?? 0;
            reaper?.Children.Add(childPid);
        }
        dying.Children.Clear();
    }

    private GuestThread LiveThread(int tid) =>
        threads.TryGetValue(tid, out var thread) ? thread : throw ProtocolViolation.Of($"no live thread {tid}");

    private GuestProcess LiveProcess(int pid)
    {
        if (!processes.TryGetValue(pid, out var process))
            throw ProtocolViolation.Of($"no process {pid}");
        if (process.IsZombie)
            throw ProtocolViolation.Of($"process {pid} is a zombie");
        return process;
    }
}
