using UmlMicro.Contracts.Linux;
using UmlMicro.Contracts.Servers;
using UmlMicro.Supervisor.Guest;

namespace UmlMicro.Supervisor.Syscalls;

/// <summary>
/// --max-procs: the guest's processes (thread groups) count from their creation until they are reaped, as Linux
/// counts a user's processes for RLIMIT_NPROC, so a zombie still counts. A fork, vfork or clone of a process
/// beyond the limit fails with EAGAIN at its entry stop: the host never creates the child. Threads do not count.
/// Room for a child is reserved at the entry, so that two threads forking at once cannot both take the last
/// place; the reservation becomes the child at the creator's clone event, or is given back when the call fails.
/// Everything here runs on the tracer thread.
/// </summary>
internal sealed class ProcessLimit(int max)
{
    /// <summary>Guest pids of live processes and of zombies not yet reaped.</summary>
    private readonly HashSet<int> _counted = [];
    private int _reserved;

    /// <summary>0: no limit (nothing is counted).</summary>
    public int Max { get; } = max;

    /// <summary>Processes and forks under way.</summary>
    public int Count => _counted.Count + _reserved;

    /// <summary>A new process: guest pid 1, or the child of a fork the limit let through.</summary>
    public void Started(int vpid)
    {
        if (Max > 0) _counted.Add(vpid);
    }

    /// <summary>At the entry of a call that creates a process: a place for the child, or EAGAIN.</summary>
    public void Reserve(Kernel k, GuestTask creator)
    {
        // A fork restarted after a signal handler (ERESTARTNOINTR) still holds its place.
        if (Max == 0 || creator.ForkReserved) return;
        if (Count >= Max) Prune(k);
        if (Count >= Max) throw new SyscallError(Errno.EAGAIN);
        creator.ForkReserved = true;
        _reserved++;
    }

    /// <summary>The creator's fork made its child, failed, or the creator died.</summary>
    public void Release(GuestTask creator)
    {
        if (!creator.ForkReserved) return;
        creator.ForkReserved = false;
        _reserved--;
    }

    /// <summary>A wait reaped the zombie: its place is free.</summary>
    public void Reaped(int vpid) => _counted.Remove(vpid);

    /// <summary>
    /// A zombie whose parent ignores SIGCHLD (or set SA_NOCLDWAIT) is reaped by the host itself, and no wait ever
    /// tells the kernel. Before refusing a fork, each counted process that has no live task left is looked up on the
    /// host: gone, or its host pid now someone else's, means it was reaped, and its grant goes as at a wait.
    /// </summary>
    private void Prune(Kernel k)
    {
        var live = new HashSet<int>(k.Tasks.Snapshot().Select(t => t.Vpid));
        foreach (int vpid in _counted.Where(v => !live.Contains(v)).ToList())
        {
            if (!IsHostZombie(k, vpid)) k.Reaped(vpid);
        }
    }

    /// <summary>The host still holds the zombie: its pid is in state Z, with a guest process as its parent.</summary>
    private static bool IsHostZombie(Kernel k, int vpid)
    {
        if (!k.Pids.TryHost(vpid, out int host) || !k.Pids.TryVirtual(host, out int again) || again != vpid) return false;
        string stat;
        try
        {
            stat = File.ReadAllText($"/proc/{host}/stat");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
        // "pid (comm) S ppid ...": comm may hold spaces and parentheses, so the fields count from the last ')'.
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return fields.Length > 1 && fields[0] == "Z" && int.TryParse(fields[1], out int ppid) && k.Pids.TryVirtual(ppid, out _);
    }
}
