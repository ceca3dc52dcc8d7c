using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using UmlMicro.Contracts.Servers;
using UmlMicro.Servers.Vfs.Layers;

namespace UmlMicro.ServersTests;

/// <summary>
/// The host's procfs text that names pids, made the guest's (ProcPidText): the samples are Linux 6.18's own text
/// (fs/locks.c, kernel/sched/debug.c, fs/proc/base.c, kernel/pid.c), the pids of a made-up host. The guest has
/// pid 1 (host 3049, with thread 2 = host 3060) and pid 3 (host 3050); 4000 and 4001 are the host's.
/// </summary>
public sealed class ProcPidTextTests
{
    private static readonly GuestPids Pids = new([
        new ProcPid(1, 3049, [new ProcTid(1, 3049), new ProcTid(2, 3060)]),
        new ProcPid(3, 3050, [new ProcTid(3, 3050)]),
    ]);

    [Fact]
    public void Sched_names_the_guest_tid_and_keeps_the_hosts_counters()
    {
        const string host = "cat (3060, #threads: 2)\n-------------------------------------------------------------------\n"
            + "se.exec_start                                :        206957.404880\ncurrent_node=0, numa_group_id=3049\nnuma_faults node=0 task_private=0\n";

        Assert.Equal("cat (2, #threads: 2)\n-------------------------------------------------------------------\n"
            + "se.exec_start                                :        206957.404880\ncurrent_node=0, numa_group_id=1\nnuma_faults node=0 task_private=0\n",
            ProcPidText.Sched(host, 2, Pids));
    }

    [Fact]
    public void Sched_takes_the_pid_above_the_rule_when_comm_looks_like_a_head_and_hides_a_host_numa_group()
    {
        const string host = "x (7, #threads: 1)\n (3049, #threads: 1)\n---\ncurrent_node=0, numa_group_id=4000\n";

        Assert.Equal("x (7, #threads: 1)\n (1, #threads: 1)\n---\ncurrent_node=0, numa_group_id=0\n", ProcPidText.Sched(host, 1, Pids));
        Assert.Equal("", ProcPidText.Sched("", 1, Pids)); // the task is gone: nothing of the host's instead
    }

    [Fact]
    public void Locks_shows_the_guests_locks_only_with_guest_pids_numbered_from_1()
    {
        const string host = """
            1: POSIX  ADVISORY  WRITE 4000 fe:00:100 0 EOF
            2: OFDLCK ADVISORY  READ -1 fe:00:11657562 5 9
            3: POSIX  ADVISORY  WRITE 3049 fe:00:11657561 20 EOF
            3: -> POSIX  ADVISORY  WRITE 4001 fe:00:11657561 20 EOF
            3: -> POSIX  ADVISORY  WRITE 3050 fe:00:11657561 20 EOF
            4: FLOCK  ADVISORY  WRITE 4001 fe:00:200 0 EOF
            4: -> FLOCK  ADVISORY  WRITE 3050 fe:00:200 0 EOF
            5: OFDLCK ADVISORY  READ -1 fe:00:300 0 EOF
            6: FLOCK  ADVISORY  WRITE 3050 fe:00:11657560 0 EOF
            6: -> FLOCK  ADVISORY  WRITE 3049 fe:00:11657560 0 EOF
            6:  -> FLOCK  ADVISORY  WRITE 3049 fe:00:11657560 0 EOF

            """;
        string[] guestFdLocks = ["OFDLCK ADVISORY  READ -1 fe:00:11657562 5 9"];

        Assert.Equal("""
            1: OFDLCK ADVISORY  READ -1 fe:00:11657562 5 9
            2: POSIX  ADVISORY  WRITE 1 fe:00:11657561 20 EOF
            2: -> POSIX  ADVISORY  WRITE 3 fe:00:11657561 20 EOF
            3: FLOCK  ADVISORY  WRITE 3 fe:00:11657560 0 EOF
            3: -> FLOCK  ADVISORY  WRITE 1 fe:00:11657560 0 EOF
            3:  -> FLOCK  ADVISORY  WRITE 1 fe:00:11657560 0 EOF

            """, ProcPidText.Locks(host, Pids, () => guestFdLocks));
    }

    [Fact]
    public void Locks_keeps_one_ofd_line_per_lock_the_guests_fds_hold_and_does_not_look_without_one()
    {
        const string host = "1: OFDLCK ADVISORY  READ -1 fe:00:9 0 EOF\n2: OFDLCK ADVISORY  READ -1 fe:00:9 0 EOF\n";

        Assert.Equal("1: OFDLCK ADVISORY  READ -1 fe:00:9 0 EOF\n", ProcPidText.Locks(host, Pids, () => ["OFDLCK ADVISORY  READ -1 fe:00:9 0 EOF"]));
        Assert.Equal("", ProcPidText.Locks(host, Pids, () => []));
        Assert.Equal("1: FLOCK  ADVISORY  WRITE 1 fe:00:1 0 EOF\n",
            ProcPidText.Locks("1: FLOCK  ADVISORY  WRITE 3049 fe:00:1 0 EOF\n", Pids, () => throw new InvalidOperationException("no OFD line, no fdinfo")));
    }

    [Fact]
    public void FdInfo_locks_are_what_locks_matches_ofd_lines_by()
    {
        const string fdinfo = "pos:\t0\nflags:\t0100002\nmnt_id:\t26\nino:\t11657562\nlock:\t1: OFDLCK ADVISORY  READ -1 fe:00:11657562 5 9\n";

        Assert.Equal(["OFDLCK ADVISORY  READ -1 fe:00:11657562 5 9"], ProcPidText.FdInfoLocks(fdinfo));
    }

    [Fact]
    public void Timers_notify_the_guest_pid_or_tid()
    {
        const string host = "ID: 2\nsignal: 10/0000000000001234\nnotify: none/pid.3049\nClockID: 0\n"
            + "ID: 1\nsignal: 10/0000000000003049\nnotify: signal/tid.3060\nClockID: 0\n"
            + "ID: 0\nsignal: 14/0000000000000000\nnotify: thread/pid.4000\nClockID: 1\n";

        Assert.Equal("ID: 2\nsignal: 10/0000000000001234\nnotify: none/pid.1\nClockID: 0\n"
            + "ID: 1\nsignal: 10/0000000000003049\nnotify: signal/tid.2\nClockID: 0\n"
            + "ID: 0\nsignal: 14/0000000000000000\nnotify: thread/pid.0\nClockID: 1\n",
            ProcPidText.Timers(host, Pids));
    }

    [Theory]
    [InlineData("3050", "3")] // a process
    [InlineData("3060", "2")] // a PIDFD_THREAD pidfd of a thread
    [InlineData("3050\t12", "3")] // the host inside a pid namespace: the guest has one level
    [InlineData("-1", "-1")] // the task is gone
    [InlineData("4000", "0")] // a task the guest cannot see
    public void FdInfo_of_a_pidfd_names_the_guest_pid(string hostPid, string guestPid)
    {
        string host = $"pos:\t0\nflags:\t02000002\nmnt_id:\t4\nino:\t3051\nPid:\t{hostPid.Split('\t')[0]}\nNSpid:\t{hostPid}\n";

        Assert.Equal($"pos:\t0\nflags:\t02000002\nmnt_id:\t4\nino:\t3051\nPid:\t{guestPid}\nNSpid:\t{guestPid}\n", ProcPidText.FdInfo(host, Pids));
    }

    [Fact]
    public void FdInfo_lock_lines_name_the_guest_pid()
    {
        const string host = "pos:\t0\nflags:\t0100002\nmnt_id:\t26\nino:\t11657561\n"
            + "lock:\t1: POSIX  ADVISORY  WRITE 3049 fe:00:11657561 0 9\nlock:\t2: FLOCK  ADVISORY  WRITE 4000 fe:00:11657561 0 EOF\n";

        Assert.Equal("pos:\t0\nflags:\t0100002\nmnt_id:\t26\nino:\t11657561\n"
            + "lock:\t1: POSIX  ADVISORY  WRITE 1 fe:00:11657561 0 9\nlock:\t2: FLOCK  ADVISORY  WRITE 0 fe:00:11657561 0 EOF\n",
            ProcPidText.FdInfo(host, Pids));
    }

    [Fact]
    public void Children_are_guest_pids_and_the_hosts_are_left_out()
    {
        Assert.Equal("3 ", ProcPidText.Children("4000 3050 ", Pids));
        Assert.Equal("", ProcPidText.Children("", Pids));
    }
}

/// <summary>The same files read through the VFS server, from this process's own host files: this process is guest
/// pid 1, so every pid the guest reads must be 1.</summary>
public sealed class ProcPidFilesTests : IDisposable
{
    private const int Vpid = 1; // the one process a freshly configured VFS knows
    private readonly VfsHarness _vfs = new();
    private readonly string _dir = Directory.CreateTempSubdirectory("umlmicro-proc-locks-").FullName;

    public void Dispose()
    {
        _vfs.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private static ProcPid[] Guest() => [new ProcPid(Vpid, Environment.ProcessId, [new ProcTid(Vpid, Environment.ProcessId)])];

    private async Task<string> Read(string path)
    {
        var request = new PathRequest(Vpid, Vpid, new PathArg(path), PathOp.Open, true, Credentials.Root);
        var first = await _vfs.Server.ResolveAsync(request);
        Assert.True(first.NeedProcesses, $"{path} is made without asking for the guest's processes: {first}");
        var r = await _vfs.Server.ResolveAsync(request with { Processes = Guest() });
        Assert.Equal(0, r.Errno);
        return File.ReadAllText(r.HostPath!);
    }

    [Fact]
    public async Task Proc_self_sched_names_the_guest_pid()
    {
        string first = (await Read("/proc/self/sched")).Split('\n')[0];

        Assert.Matches(@"^.+ \(1, #threads: \d+\)$", first);
    }

    [Fact]
    public async Task Proc_locks_shows_the_guests_flock_and_ofd_lock_and_no_other_pid()
    {
        // FileShare.None is a flock(LOCK_EX) on Linux; the OFD lock is taken by hand.
        using var flocked = new FileStream(Path.Combine(_dir, "flock"), FileMode.Create, FileAccess.ReadWrite, FileShare.None);
        using var ofd = File.OpenHandle(Path.Combine(_dir, "ofd"), FileMode.Create, FileAccess.ReadWrite, FileShare.ReadWrite);
        var range = new Flock { Type = 0 /* F_RDLCK */, Start = 5, Len = 5 };
        Assert.Equal(0, fcntl(ofd, 37 /* F_OFD_SETLK */, ref range));
        string flockIno = Ino(flocked.SafeFileHandle), ofdIno = Ino(ofd);

        var lines = (await Read("/proc/locks")).Split('\n', StringSplitOptions.RemoveEmptyEntries);

        Assert.Contains(lines, l => l.Contains(" FLOCK  ADVISORY  WRITE 1 ", StringComparison.Ordinal) && l.Contains($":{flockIno} 0 EOF", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("OFDLCK ADVISORY  READ -1 ", StringComparison.Ordinal) && l.EndsWith($":{ofdIno} 5 9", StringComparison.Ordinal));
        for (int i = 0; i < lines.Length; i++)
        {
            var words = lines[i].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal($"{i + 1}:", words[0]);
            Assert.Contains(words[4], (string[])["1", "-1"]);
        }
    }

    [Fact]
    public async Task Proc_self_fdinfo_of_a_locked_file_names_the_guest_pid()
    {
        using var flocked = new FileStream(Path.Combine(_dir, "flock"), FileMode.Create, FileAccess.ReadWrite, FileShare.None);

        string info = await Read($"/proc/self/fdinfo/{flocked.SafeFileHandle.DangerousGetHandle()}");

        Assert.Contains($"\nlock:\t1: FLOCK  ADVISORY  WRITE 1 ", info, StringComparison.Ordinal);
        Assert.Contains($"\nino:\t{Ino(flocked.SafeFileHandle)}\n", info, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Proc_self_timers_notify_the_guest_pid()
    {
        // A timer that signals the process (a null sigevent: SIGALRM to the process), never armed.
        Assert.Equal(0, timer_create(1 /* CLOCK_MONOTONIC */, IntPtr.Zero, out IntPtr timer));
        try
        {
            string timers = await Read("/proc/self/timers");

            Assert.Contains("\nnotify: signal/pid.1\n", timers, StringComparison.Ordinal);
            Assert.DoesNotContain($"pid.{Environment.ProcessId}", timers, StringComparison.Ordinal);
        }
        finally
        {
            timer_delete(timer);
        }
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int timer_create(int clock, IntPtr sigevent, out IntPtr timer);

    [DllImport("libc")]
    private static extern int timer_delete(IntPtr timer);

    private static string Ino(SafeFileHandle fd) =>
        File.ReadAllLines($"/proc/self/fdinfo/{fd.DangerousGetHandle()}").Single(l => l.StartsWith("ino:", StringComparison.Ordinal))[4..].Trim();

    [StructLayout(LayoutKind.Sequential)]
    private struct Flock
    {
        public short Type;
        public short Whence;
        public long Start;
        public long Len;
        public int Pid;
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int fcntl(SafeFileHandle fd, int cmd, ref Flock range);
}
