using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using UmlMicro.Contracts.Servers;

namespace UmlMicro.Servers.Vfs.Layers;

/// <summary>The guest's pid of each host task of the guest: a process by its host tgid, a task (leader or thread)
/// by its host tid. A host pid with no guest pid is a task of the host's, which the guest must not see.</summary>
internal sealed class GuestPids
{
    private readonly Dictionary<int, int> _processes = [];
    private readonly Dictionary<int, int> _tasks = [];

    public GuestPids(IReadOnlyList<ProcPid> processes)
    {
        foreach (var p in processes)
        {
            _processes[p.HostPid] = p.Vpid;
            _tasks[p.HostPid] = p.Vpid;
            foreach (var t in p.Threads) _tasks[t.HostTid] = t.Vtid;
        }
    }

    /// <summary>The guest pid of the process whose host tgid is <paramref name="hostPid"/>, or null.</summary>
    public int? Process(int hostPid) => _processes.TryGetValue(hostPid, out int v) ? v : null;

    /// <summary>The guest tid of the task whose host tid is <paramref name="hostTid"/>, or null.</summary>
    public int? Task(int hostTid) => _tasks.TryGetValue(hostTid, out int v) ? v : null;
}

/// <summary>
/// Text of the host's procfs files that name pids, made the guest's: each host pid becomes the guest pid of the
/// same task. Where Linux in a pid namespace prints a task it cannot see as 0 (pid_nr_ns), so does the guest's
/// text; where Linux leaves such a task out (/proc/locks), so does it. Pure transforms: host text in, guest text out.
/// </summary>
internal static partial class ProcPidText
{
    /// <summary>
    /// /proc/PID/sched (kernel/sched/debug.c, proc_sched_show_task): the first line is "comm (PID, #threads: N)"
    /// with the task's pid, and "numa_group_id=N" names the task that made the task's NUMA group (a tid, 0 for
    /// none). The rest is the scheduler's counters, which are the host's for the same task.
    /// </summary>
    public static string Sched(string host, int vtid, GuestPids pids)
    {
        // comm is printed raw and may hold anything, a newline or "(7, #threads: 1)" too, but not the 27 bytes or
        // more of the whole head: the pid is the one before ", #threads: N)" and the rule of dashes under it.
        var m = SchedHead().Match(host);
        if (!m.Success) return "";
        var pid = m.Groups["pid"];
        int bodyAt = m.Index + m.Length;
        return string.Concat(host.AsSpan(0, pid.Index), Num(vtid), host.AsSpan(pid.Index + pid.Length, bodyAt - pid.Index - pid.Length),
            NumaGroup().Replace(host[bodyAt..], g => g.Groups[1].Value + Num(TaskOrZero(g.Groups[2].Value, pids))));
    }

    /// <summary>
    /// /proc/locks (fs/locks.c, locks_show): only the locks the guest's processes hold, and the waiters of those
    /// that are the guest's, each with its guest pid and numbered 1..n as a kernel that had only the guest's locks
    /// would number them (Linux in a pid namespace keeps the global positions, which would count the host's locks).
    /// A lock whose owner is no guest process is left out with its waiters, as Linux leaves out a lock whose owner
    /// its pid namespace cannot see. OFD locks have no owner pid (-1 on every namespace): such a line is the guest's
    /// when one of the guest's open files shows that very lock in its fdinfo (<paramref name="guestFdLocks"/>: the
    /// text of the "lock:" lines after their number, asked for only when there is such a line), one line per lock
    /// found there; a waiter without a pid cannot be told apart, so it is left out.
    /// </summary>
    public static string Locks(string host, GuestPids pids, Func<IEnumerable<string>> guestFdLocks)
    {
        var sb = new StringBuilder();
        Dictionary<string, int>? fdLocks = null;
        int n = 0;
        bool holderShown = false;
        foreach (var line in host.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (LockLine.Parse(line) is not { } l) continue;
            int? guest;
            if (!l.Waiter)
            {
                guest = l.Pid > 0 ? pids.Process(l.Pid) : OwnedByGuest(l.Body(line)) ? l.Pid : null;
                holderShown = guest is not null;
                if (!holderShown) continue;
                n++;
            }
            else
            {
                guest = l.Pid > 0 ? pids.Process(l.Pid) : null;
                if (!holderShown) continue;
            }
            if (guest is not int shown) continue;
            sb.Append(Num(n)).Append(':').Append(l.WithPid(line, shown)).Append('\n');
        }
        return sb.ToString();

        bool OwnedByGuest(string body)
        {
            fdLocks ??= guestFdLocks().GroupBy(s => s, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
            if (!fdLocks.TryGetValue(body, out int left) || left == 0) return false;
            fdLocks[body] = left - 1;
            return true;
        }
    }

    /// <summary>The "lock:" lines of an fdinfo file, as /proc/locks has them after their number (what
    /// <see cref="Locks"/> is given for the guest's OFD locks).</summary>
    public static IEnumerable<string> FdInfoLocks(string fdinfo)
    {
        foreach (var line in fdinfo.Split('\n'))
            if (line.StartsWith(LockPrefix, StringComparison.Ordinal) && LockLine.Parse(line[LockPrefix.Length..]) is { } l)
                yield return l.Body(line[LockPrefix.Length..]);
    }

    private const string LockPrefix = "lock:\t";

    /// <summary>
    /// /proc/PID/timers (fs/proc/base.c, show_timer): "notify: HOW/pid.N" names the process a timer signals,
    /// "notify: HOW/tid.N" the thread (SIGEV_THREAD_ID). The "signal:" line is the signal and its sigval, no pid.
    /// </summary>
    public static string Timers(string host, GuestPids pids) =>
        TimerNotify().Replace(host, m => m.Groups["head"].Value + Num(m.Groups["kind"].Value == "tid"
            ? TaskOrZero(m.Groups["n"].Value, pids)
            : (int.TryParse(m.Groups["n"].Value, CultureInfo.InvariantCulture, out int p) ? pids.Process(p) ?? 0 : 0)));

    /// <summary>
    /// /proc/PID/fdinfo/N. A pidfd's (kernel/pid.c, pidfd_show_fdinfo) "Pid:" is its task's pid (a thread's tid
    /// for a PIDFD_THREAD one; -1 once it is gone) and "NSpid:" that pid in each namespace from the reader's down:
    /// the guest has one, so it is the guest pid alone. A locked file's "lock:" lines are /proc/locks lines of the
    /// locks that fd holds; an owner that is no guest task is 0 there, as Linux prints a pid its namespace cannot see.
    /// </summary>
    public static string FdInfo(string host, GuestPids pids)
    {
        var sb = new StringBuilder(host.Length);
        foreach (var line in Lines(host))
        {
            if (line.StartsWith("Pid:\t", StringComparison.Ordinal) || line.StartsWith("NSpid:\t", StringComparison.Ordinal))
            {
                string key = line[..(line.IndexOf('\t') + 1)];
                string first = line[key.Length..].Split('\t')[0];
                int nr = int.TryParse(first, CultureInfo.InvariantCulture, out int p) ? p : 0;
                sb.Append(key).Append(Num(nr > 0 ? pids.Task(nr) ?? 0 : nr)).Append('\n');
            }
            else if (line.StartsWith(LockPrefix, StringComparison.Ordinal) && LockLine.Parse(line[LockPrefix.Length..]) is { } l)
            {
                string rest = line[LockPrefix.Length..];
                int guest = l.Pid > 0 ? pids.Process(l.Pid) ?? 0 : l.Pid;
                sb.Append(LockPrefix).Append(rest, 0, l.Colon).Append(':').Append(l.WithPid(rest, guest)).Append('\n');
            }
            else
            {
                sb.Append(line).Append('\n');
            }
        }
        return sb.ToString();
    }

    /// <summary>
    /// /proc/PID/task/TID/children (fs/proc/array.c, children_seq_show): "PID " for each child of that thread. A
    /// child that is no guest process is left out, as Linux leaves out one its pid namespace cannot see.
    /// </summary>
    public static string Children(string host, GuestPids pids)
    {
        var sb = new StringBuilder();
        foreach (var word in host.Split([' ', '\n'], StringSplitOptions.RemoveEmptyEntries))
            if (int.TryParse(word, CultureInfo.InvariantCulture, out int p) && pids.Process(p) is { } v)
                sb.Append(Num(v)).Append(' ');
        return sb.ToString();
    }

    /// <summary>A host tid's guest tid; 0 (no task, as Linux prints one its namespace cannot see) otherwise.</summary>
    public static int TaskOrZero(string hostTid, GuestPids pids) =>
        int.TryParse(hostTid, CultureInfo.InvariantCulture, out int t) && t > 0 ? pids.Task(t) ?? 0 : 0;

    /// <summary>
    /// One line of /proc/locks (fs/locks.c, lock_get_status): "ID: [-> ]KIND MODE TYPE PID DEV:INODE START END",
    /// KIND MODE being two words ("FLOCK  ADVISORY ", "OFDLCK ADVISORY ", "LEASE  ACTIVE   ", ...), and a waiter
    /// blocked on the lock above marked "->" (indented by its depth) under its holder's ID.
    /// </summary>
    private readonly record struct LockLine(int Colon, bool Waiter, int BodyStart, int PidStart, int PidLength, int Pid)
    {
        public static LockLine? Parse(string line)
        {
            int colon = line.IndexOf(':');
            if (colon <= 0 || line.AsSpan(0, colon).ContainsAnyExceptInRange('0', '9')) return null;
            var words = Words(line, colon + 1);
            if (words.Count < 5) return null;
            bool waiter = line.AsSpan(words[0].Start, words[0].Length).SequenceEqual("->");
            int at = waiter ? 1 : 0;
            if (words.Count < at + 5) return null;
            var pid = words[at + 3];
            if (!int.TryParse(line.AsSpan(pid.Start, pid.Length), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int n)) return null;
            return new LockLine(colon, waiter, words[at].Start, pid.Start, pid.Length, n);
        }

        /// <summary>The lock itself, without its ID and "->": what identifies the same lock in fdinfo.</summary>
        public string Body(string line) => line[BodyStart..];

        /// <summary>The line after its "ID:", with <paramref name="pid"/> in place of the host's.</summary>
        public string WithPid(string line, int pid) =>
            string.Concat(line.AsSpan(Colon + 1, PidStart - Colon - 1), Num(pid), line.AsSpan(PidStart + PidLength));

        private static List<(int Start, int Length)> Words(string line, int from)
        {
            var words = new List<(int, int)>();
            int i = from;
            while (i < line.Length)
            {
                while (i < line.Length && line[i] == ' ') i++;
                int start = i;
                while (i < line.Length && line[i] != ' ') i++;
                if (i > start) words.Add((start, i - start));
            }
            return words;
        }
    }

    private static IEnumerable<string> Lines(string text)
    {
        var lines = text.Split('\n');
        return text.EndsWith('\n') ? lines[..^1] : lines;
    }

    [GeneratedRegex(@"\((?<pid>\d+), #threads: \d+\)\n-+\n")]
    private static partial Regex SchedHead();

    [GeneratedRegex(@"(numa_group_id=)(\d+)")]
    private static partial Regex NumaGroup();

    [GeneratedRegex(@"^(?<head>notify: \w+/(?<kind>pid|tid)\.)(?<n>-?\d+)$", RegexOptions.Multiline)]
    private static partial Regex TimerNotify();

    /// <summary>A pid as procfs prints it.</summary>
    internal static string Num(int n) => n.ToString(CultureInfo.InvariantCulture);
}
