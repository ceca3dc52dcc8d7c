using System.Globalization;
using System.Text;
using UmlMicro.Contracts.Linux;
using UmlMicro.Contracts.Servers;

namespace UmlMicro.Servers.Sched;

/// <summary>
/// /proc/PID/stat and /proc/PID/status (and task/TID's) as the guest sees them: the host's text of the same task with
/// every pid in it made the guest's from the process table, no tracer, and a task the kernel's tracer holds shown as
/// it would be without one. Pure transforms: host text and the table's facts in, guest text out.
/// </summary>
internal static class ProcStatText
{
    /// <summary>The text of <see cref="ProcTextRequest.File"/> for the request's task, or ESRCH/ENOENT.</summary>
    public static ProcText Render(ProcTextRequest request, ProcessTable table)
    {
        if (!table.TryGetProcess(request.Vpid, out var process)) return new ProcText("", Errno: Errno.ESRCH);
        // The process's own directory speaks for its leader, which may be gone while other threads run (or the
        // process is a zombie): its ids are the process's all the same.
        if (request.Vtid != request.Vpid && !process.Threads.ContainsKey(request.Vtid)) return new ProcText("", Errno: Errno.ESRCH);
        var task = new TaskView(process, request.Vtid, request.Stopped, table);
        return request.File switch
        {
            "stat" => new ProcText(Stat(request.HostText, task)),
            "status" => new ProcText(Status(request.HostText, task)),
            _ => new ProcText("", Errno: Errno.ENOENT),
        };
    }

    private readonly record struct TaskView(GuestProcess Process, int Vtid, bool Stopped, ProcessTable Table)
    {
        /// <summary>The guest tid of a host tid; 0, as Linux prints a task its pid namespace cannot see.</summary>
        public int GuestTid(int hostTid)
        {
            foreach (var p in Table.Processes)
                foreach (var t in p.Threads.Values)
                    if (t.HostTid == hostTid) return t.Tid;
            return 0;
        }

        /// <summary>The task's scheduling attributes: the thread's, or for the process's own directory its leader's
        /// (null for a zombie, whose stat keeps the host's).</summary>
        public SchedAttr? Attr => Process.Threads.TryGetValue(Vtid, out var t) ? t.Attr : null;

        /// <summary>The guest pid of the process whose host thread group is <paramref name="hostPid"/>, or null.</summary>
        public int? GuestPid(int hostPid) => Table.Processes.FirstOrDefault(p => p.HostPid == hostPid)?.Pid;
    }

    /// <summary>fs/proc/array.c, proc_pid_status: one "Key:\tvalue" per line.</summary>
    private static string Status(string host, TaskView task)
    {
        var sb = new StringBuilder(host.Length);
        foreach (var line in host.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            string key = line[..(line.IndexOf(':') + 1)];
            string? value = key switch
            {
                "Tgid:" or "NStgid:" => Num(task.Process.Pid),
                "Pid:" or "NSpid:" => Num(task.Vtid),
                "PPid:" => Num(task.Process.ParentPid),
                "TracerPid:" => "0",
                // Stopped by the kernel's own tracer: to the guest it runs, unless job control stopped it.
                "State:" when line.Contains("tracing stop", StringComparison.Ordinal) => task.Stopped ? "T (stopped)" : "R (running)",
                "NSpgid:" => Num(task.Process.Pgid),
                "NSsid:" => Num(task.Process.Sid),
                // The tid of the task that made the NUMA group (0: none); Linux does not translate it.
                "Ngid:" => Num(int.TryParse(line.AsSpan(key.Length).Trim(), CultureInfo.InvariantCulture, out int ngid) && ngid > 0 ? task.GuestTid(ngid) : 0),
                _ => null,
            };
            sb.Append(value is null ? line : $"{key}\t{value}").Append('\n');
        }
        return sb.ToString();
    }

    /// <summary>fs/proc/array.c, do_task_stat: "pid (comm) state ppid pgrp session tty_nr tpgid ...", comm raw (it may
    /// hold spaces and parentheses: the last ')' ends it).</summary>
    private static string Stat(string host, TaskView task)
    {
        int close = host.LastIndexOf(')');
        if (close < 0 || close + 2 > host.Length) return host;
        var fields = host[(close + 2)..].TrimEnd('\n').Split(' ');
        if (fields.Length < 6) return host;
        if (fields[0] == "t") fields[0] = task.Stopped ? "T" : "R"; // as in status
        fields[1] = Num(task.Process.ParentPid);
        fields[2] = Num(task.Process.Pgid);
        fields[3] = Num(task.Process.Sid);
        // The terminal's foreground group: a host group the guest has no process for is no group of the guest's.
        if (int.TryParse(fields[5], CultureInfo.InvariantCulture, out int tpgid) && tpgid > 0)
            fields[5] = Num(task.GuestPid(tpgid) ?? -1);
        // priority, nice (fields 18, 19) and rt_priority, policy (40, 41) are the scheduling attributes Sched keeps,
        // not the host thread's (which never has a lowered nice or a real-time class).
        if (task.Attr is { } a && fields.Length > Policy)
        {
            fields[Priority] = Num(TaskPrio(a));
            fields[Nice] = Num(a.Nice);
            fields[RtPriority] = Num(SchedAbi.RealTime(a.Policy) ? a.Priority : 0);
            fields[Policy] = Num(a.Policy);
        }
        string comm = host[host.IndexOf('(')..(close + 1)];
        return $"{Num(task.Vtid)} {comm} {string.Join(' ', fields)}\n";
    }

    // Indexes into stat's fields after "pid (comm) ": proc(5)'s field N is at N - 3.
    private const int Priority = 18 - 3, Nice = 19 - 3, RtPriority = 40 - 3, Policy = 41 - 3;

    /// <summary>task_prio (kernel/sched/syscalls.c): prio - MAX_RT_PRIO, which is -101 for DEADLINE, -1 - rt_priority for
    /// FIFO and RR, 20 + nice otherwise.</summary>
    private static int TaskPrio(SchedAttr a) => a.Policy switch
    {
        SchedAbi.SCHED_DEADLINE => -101,
        _ when SchedAbi.RealTime(a.Policy) => -1 - a.Priority,
        _ => 20 + a.Nice,
    };

    private static string Num(int n) => n.ToString(CultureInfo.InvariantCulture);
}
