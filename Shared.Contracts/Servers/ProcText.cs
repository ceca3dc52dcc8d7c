using System.Collections.Generic;

namespace UmlMicro.Contracts.Servers;

/// <summary>
/// A file of a guest task's procfs directory whose text a server other than the VFS makes, because what it shows is
/// that server's (sched/proc_text: stat and status; mm/proc_text: maps and smaps_rollup). <paramref name="File"/> is the
/// name in the task's directory, for task <paramref name="Vtid"/> of process <paramref name="Vpid"/> (the leader's tid
/// when the process's own directory is read). <paramref name="HostText"/> is the host's file of the same task, for
/// what only the host keeps (times, counters, the command name). <paramref name="Stopped"/>: the task is in a
/// job-control stop (SIGSTOP, SIGTSTP, ...), which only the supervisor knows; to the host every traced stop is 't'.
/// </summary>
public sealed record ProcTextRequest(int Vpid, int Vtid, string File, string HostText, bool Stopped = false);

/// <summary>
/// What a procfs file shows the guest. <paramref name="Errno"/> not 0: there is no such task (ESRCH) or no such file
/// (ENOENT), and the guest's open fails with ENOENT, as a /proc/PID of a task that is gone does.
/// <paramref name="Files"/>: lines of <paramref name="Text"/> that end in the host path of a mapped file, which the
/// VFS shows as the guest's path of that file (names are the VFS's).
/// </summary>
public sealed record ProcText(string Text, IReadOnlyList<MappedFile>? Files = null, int Errno = 0);

/// <summary>
/// Line <paramref name="Line"/> (from 0) of a <see cref="ProcText"/> ends in a name: its sixth field to the line's end
/// is the host path of the file with that device and inode, as a /proc/PID/maps line has it (a newline in the name
/// is "\012" there, so a line is one mapping), " (deleted)" after it when the host said so.
/// </summary>
public sealed record MappedFile(int Line, int DevMajor, int DevMinor, ulong Inode);
