using System.Runtime.InteropServices;
using UmlMicro.Contracts.Linux;
using UmlMicro.Contracts.Servers;
using UmlMicro.Supervisor.Guest;
using UmlMicro.Supervisor.Native;
using UmlMicro.Supervisor.Ptrace;
using UmlMicro.Supervisor.Servers;
using UmlMicro.Supervisor.Syscalls;
using static UmlMicro.Supervisor.Native.Interop;

namespace UmlMicro.Supervisor.Tracing;

/// <summary>
/// The tracing thread of UML's TT mode: a dedicated host thread that starts the guest, seizes it, and
/// then services every stop of every guest task in a synchronous loop. ptrace only works from the
/// thread that attached a tracee, so nothing here may hop threads (no async, no thread pool).
/// Guest tasks are host threads and run in parallel on all host CPUs; they stop only at syscalls.
/// </summary>
internal sealed unsafe partial class TracerThread(Kernel kernel, TrapMode mode, bool observeAll, string launcher, string program, IReadOnlyList<string> argv,
    IReadOnlyList<string> environment, bool deterministicLayout = false, int maxFiles = 0, TimeSpan timeout = default, string? wallPlan = null,
    RunEnding? ending = null)
    : ISyscallInjector
{
    /// <summary>TT mode turns a syscall the kernel handles itself into this harmless one on the host.</summary>
    private const int NullSyscall = 39; // getpid

    private readonly Kernel _k = kernel;
    private readonly long _idle = TrapPath.IdleRequest(mode);
    private int _initHostPid;
    private int? _initStatus;
    private Exception? _failure;

    /// <summary>Wait status of guest pid 1 once it has ended.</summary>
    public int? InitStatus => _initStatus;

    /// <summary>Host pid of guest pid 1, once started (0 before).</summary>
    public int InitHostPid => Volatile.Read(ref _initHostPid);

    /// <summary>Set when the tracer stopped because the kernel itself failed (e.g. a server broke its contract).</summary>
    public Exception? Failure => _failure;

    private int _alarmKilled;

    /// <summary>--timeout ended the guest: the alarm killed pid 1 (and pid 1 had not exited of itself just before).</summary>
    public bool TimedOut => Volatile.Read(ref _alarmKilled) != 0 && !(_initStatus is { } s && WIFEXITED(s));

    /// <summary>Runs the guest to the end on a new dedicated thread; returns when guest pid 1 and all its tasks are gone.</summary>
    public void Run()
    {
        var thread = new Thread(() =>
        {
            using var ended = new ManualResetEventSlim();
            Thread? alarm = null;
            int pidfd = -1;
            try
            {
                if (Start())
                {
                    pidfd = pidfd_open(_initHostPid, 0);
                    if (pidfd < 0) throw new InvalidOperationException($"pidfd_open of guest pid 1 failed: errno {LastErrno}");
                    // A server's mistake found off this thread ends the guest as the alarm does: pid 1 first.
                    ending?.KillGuestWith(() => pidfd_send_signal(pidfd, Signals.SIGKILL, 0, 0));
                    if (timeout > TimeSpan.Zero) alarm = StartAlarm(ended, pidfd);
                    Loop();
                }
            }
            catch (Exception e)
            {
                _failure = e;
                KillAll();
                Drain();
            }
            finally
            {
                ended.Set();
                ending?.GuestOver();
                alarm?.Join(); // it may be sending through the pidfd
                if (pidfd >= 0) close(pidfd);
                _k.Shm.Source = null;
                _wallFds.ForEach(fd => fd.Dispose());
                EndPidNamespace();
            }
        })
        { Name = "tracer", IsBackground = true };
        thread.Start();
        thread.Join();
    }

    /// <summary>
    /// --timeout: a thread that waits for the deadline and then kills guest pid 1, through a pidfd taken while pid 1
    /// was surely alive (an unreaped child of this thread), so the signal cannot reach a host process that got its
    /// pid later. pid 1's end is the tracer's usual way out: every other guest task is killed then (see TaskGone). A
    /// tracer that waits for a server then gives the wait up (see <see cref="RunEnding"/>).
    /// </summary>
    private Thread StartAlarm(ManualResetEventSlim ended, int pidfd)
    {
        var alarm = new Thread(() =>
        {
            if (ended.Wait(timeout)) return;
            Volatile.Write(ref _alarmKilled, 1);
            ending?.TimedOut();
            if (pidfd_send_signal(pidfd, Signals.SIGKILL, 0, 0) != 0) Volatile.Write(ref _alarmKilled, 0); // gone already
        })
        { Name = "timeout", IsBackground = true };
        alarm.Start();
        return alarm;
    }

    /// <summary>What the wall left for the supervisor to hold: its seccomp listener and the guest's SysV view.</summary>
    private readonly List<Microsoft.Win32.SafeHandles.SafeFileHandle> _wallFds = [];

    /// <summary>Starts the launcher and seizes it; false when it ended before it could be (it said why on stderr).</summary>
    private bool Start()
    {
        // The guest starts on its tracer's host CPU (it inherits the pin), so a stop never pays a cross-CPU wake-up
        // until two of its tasks are busy at once (see CpuPlacement).
        _k.HostCpus.Start();
        if (_k.Vcpus.Policy is { } policy) policy.OnDecision = RingDoorbell;
        int pid = Spawn();
        int nsPid = pid;
        if (wallPlan is not null)
        {
            // Stopped in its new user namespace, whose uid and gid maps only the parent namespace may write.
            if (!LauncherStopped(pid)) return false;
            Cli.HostWall.MapIds(pid);
            kill(pid, Signals.SIGCONT);
            if (!PidNamespaceStarted(pid, out pid)) return false;
            nsPid = Syscalls.HostStatus.NsPid(pid) ?? throw new InvalidOperationException("the guest's first process is gone");
            TakeWallFds(pid);
        }
        else if (!LauncherStopped(pid)) return false;
        if (!PtraceOps.Seize(pid, TrapPath.Options(mode)))
            throw new InvalidOperationException($"PTRACE_SEIZE failed: errno {LastErrno}");
        var grant = _k.Sched.Call(s => s.StartInitAsync(pid));
        // The guest starts at the nice value its launcher had, as a program started by it natively would (nice -n 10
        // umlmicro run ...): set in Sched, which keeps the guest's, by the kernel itself.
        if (HostNice(pid) is int nice and not 0)
        {
            var kernel = new TaskCreds(grant.Vtid, 0, 0, CapSysNice: true, 0, 0);
            _k.Sched.Call(s => s.SetPriorityAsync(new PriorityRequest(kernel, SchedAbi.PRIO_PROCESS, grant.Vtid, nice, [kernel])));
        }
        var init = _k.Tasks.GetOrAdd(pid);
        init.HostTgid = pid;
        init.NsTid = nsPid;
        init.Vpid = grant.Vpid;
        init.Vtid = grant.Vtid;
        init.Started = true;
        init.ResumeRequest = _idle;
        _k.Vcpus.Admit(init.Vcpu, _idle); // the first thread: a vCPU is free
        _k.Pids.Add(grant.Vtid, pid, nsPid);
        _k.Processes.Started(grant.Vpid);
        Volatile.Write(ref _initHostPid, pid);
        // The launcher sits in a group-stop: the seize turns it into a ptrace stop, SIGCONT ends the group-stop.
        kill(pid, Signals.SIGCONT);
        return true;
    }

    /// <summary>Waits for the launcher's self-stop; false (and its status kept as guest pid 1's) when it ended instead.</summary>
    private bool LauncherStopped(int pid)
    {
        int status;
        int r;
        while ((r = waitpid(pid, &status, WUNTRACED | __WNOTHREAD)) < 0 && LastErrno == EINTR) { }
        if (r == pid && WIFSTOPPED(status)) return true;
        if (r != pid) throw new InvalidOperationException($"launcher did not stop (errno {LastErrno})");
        _initStatus = status;
        return false;
    }

    /// <summary>Host pid of the init of the guest's pid namespace (0 without one): an idle process, never traced.</summary>
    private int _nsInitPid;

    /// <summary>
    /// The launcher, behind the wall, starts the guest's pid namespace and leaves: two children it made with CLONE_PARENT,
    /// so ours, both stopped: the namespace's init (its pid 1 there), and the process that becomes guest pid 1. Guest pid 1
    /// is not the namespace's init because an init is spared every signal it has no handler for, and a guest's pid 1
    /// must die of SIGTERM as it would natively. Continues the init; false when the launcher or the guest's first
    /// process ended instead (its status kept as guest pid 1's).
    /// </summary>
    private bool PidNamespaceStarted(int launcher, out int first)
    {
        first = 0;
        bool launcherDone = false;
        var stopped = new List<int>();
        while (_initStatus is null && (!launcherDone || stopped.Count < 2))
        {
            int status;
            int r = waitpid(-1, &status, WUNTRACED | __WNOTHREAD);
            if (r < 0)
            {
                if (LastErrno == EINTR) continue;
                throw new InvalidOperationException($"the guest's pid namespace did not start (errno {LastErrno})");
            }
            if (WIFSTOPPED(status)) stopped.Add(r);
            else if (r == launcher && WIFEXITED(status) && WEXITSTATUS(status) == 0) launcherDone = true;
            else _initStatus = status; // the launcher failed (it said why), or the guest's first process ended unseized
        }
        foreach (int p in stopped)
        {
            if (Syscalls.HostStatus.NsPid(p) == 1) _nsInitPid = p;
            else first = p;
        }
        if (_initStatus is not null)
        {
            EndPidNamespace();
            return false;
        }
        if (_nsInitPid == 0 || first == 0) throw new InvalidOperationException("the launcher's two children are not the pid namespace's init and guest pid 1");
        kill(_nsInitPid, Signals.SIGCONT);
        return true;
    }

    /// <summary>Ends the guest's pid namespace: its init's death kills whatever is left in it, traced or not.</summary>
    private void EndPidNamespace()
    {
        if (_nsInitPid <= 0) return;
        kill(_nsInitPid, Signals.SIGKILL);
        int status;
        while (waitpid(_nsInitPid, &status, __WNOTHREAD) < 0 && LastErrno == EINTR) { }
        _nsInitPid = 0;
    }

    /// <summary>
    /// Copies of the descriptors the wall left open in the guest's first process: its seccomp listener, which must live as long as the
    /// guest (while it does, no guest can install a listener of its own), and /proc/sysvipc/shm as the guest's IPC
    /// namespace shows it (SysvShm reads the guest's segments there).
    /// </summary>
    private void TakeWallFds(int pid)
    {
        int pidfd = pidfd_open(pid, 0);
        if (pidfd < 0) throw new InvalidOperationException($"pidfd_open of the launcher failed: errno {LastErrno}");
        try
        {
            foreach (var link in Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd"))
            {
                string? target = new FileInfo(link).LinkTarget;
                bool listener = target == "anon_inode:seccomp notify", sysvipc = target == "/proc/sysvipc/shm";
                if (!listener && !sysvipc) continue;
                var fd = TakeFd(pidfd, int.Parse(Path.GetFileName(link), System.Globalization.CultureInfo.InvariantCulture))
                    ?? throw new InvalidOperationException($"cannot take the launcher's {target}: errno {LastErrno}");
                _wallFds.Add(fd);
                if (sysvipc) _k.Shm.Source = fd;
            }
        }
        finally
        {
            close(pidfd);
        }
    }

    /// <summary>The umlmicro script leaves the signals the user's shell ignored here (a hex SigIgn mask).</summary>
    private const string SigIgnVariable = "_UMLMICRO_SIGIGN";

    /// <summary>
    /// The umlmicro script leaves the user's soft RLIMIT_NOFILE here: the .NET runtime raised this process's soft limit
    /// to the hard one at startup, and the guest must start with the user's, as it would natively.
    /// </summary>
    private const string NoFileVariable = "_UMLMICRO_NOFILE";

    /// <summary>The launcher's NOFILE argument: "SOFT:HARD", each a number or "-" for unchanged.</summary>
    private string FileLimitArg()
    {
        if (maxFiles > 0) return $"{maxFiles}:{maxFiles}";
        return ulong.TryParse(Environment.GetEnvironmentVariable(NoFileVariable), out ulong soft) ? $"{soft}:-" : "-:-";
    }

    /// <summary>posix_spawn (vfork-based, safe from managed code) of the launcher, from this thread so it is our child.</summary>
    private int Spawn()
    {
        string filter = mode == TrapMode.Seccomp ? SeccompFilter.ToHex(SeccompFilter.Build(everything: observeAll)) : "-";
        var args = new List<string>
        {
            launcher, Environment.GetEnvironmentVariable(SigIgnVariable) ?? "0", filter, deterministicLayout ? "fixed" : "random", FileLimitArg(),
            wallPlan ?? "-", program,
        };
        args.AddRange(argv);
        int err = Interop.Spawn(args, environment, out int pid);
        if (err != 0) throw new InvalidOperationException($"cannot start {launcher}: errno {err}");
        return pid;
    }

    /// <summary>The supervisor's own environment block as it started (not .NET's view of it), less our own variables:
    /// what a guest inherits.</summary>
    public static List<string> InheritedEnvironment()
    {
        var env = new List<string>();
        for (var p = Environ; *p != null; p++)
        {
            var entry = UmlMicro.Contracts.Linux.PathBytes.Decode(MemoryMarshal.CreateReadOnlySpanFromNullTerminated((byte*)*p));
            if (!entry.StartsWith(SigIgnVariable + "=", StringComparison.Ordinal) && !entry.StartsWith(NoFileVariable + "=", StringComparison.Ordinal))
                env.Add(entry);
        }
        return env;
    }

    private void Loop()
    {
        int status;
        while (true)
        {
            int tid = waitpid(-1, &status, __WALL | __WNOTHREAD);
            if (tid < 0)
            {
                int e = LastErrno;
                if (e == EINTR) continue;
                if (e == ECHILD) return;
                throw new InvalidOperationException($"waitpid failed: errno {e}");
            }
            if (tid == _nsInitPid)
            {
                _nsInitPid = 0; // it ends only when killed, and the guest's tasks end with it; reaped, its number is free
                continue;
            }
            if (tid == _tickerPid) Ticked(status);
            else if (tid == _doorbell?.Pid) Rung(status);
            else Dispatch(tid, status);
            if (!_served.IsEmpty) FinishServed(); // a ring may be on its way still; the calls need not wait for it
            if (_initStatus is not null && _k.Tasks.Count == 0)
            {
                StopTicker();
                StopDoorbell();
                return;
            }
            KeepTicking();
        }
    }

    private void Dispatch(int tid, int status)
    {
        if (!WIFSTOPPED(status))
        {
            TaskGone(tid, status);
            return;
        }
        if (_initStatus is not null)
        {
            // pid 1 is gone and every task was killed: one that stops now (a child its creator's death left parked
            // at its first stop, say) is killed again, never resumed, so that nothing outlives the guest.
            kill(tid, Signals.SIGKILL);
            return;
        }
        var task = _k.Tasks.GetOrAdd(tid);
        int sig = WSTOPSIG(status);
        int ev = PtraceEvent(status);
        if (sig == PtraceOps.SyscallTrap || ev == PtraceOps.EVENT_SECCOMP)
        {
            SyscallStop(task);
            return;
        }
        switch (ev)
        {
            case PtraceOps.EVENT_FORK or PtraceOps.EVENT_VFORK or PtraceOps.EVENT_CLONE:
                Cloned(task, ev);
                Resume(task);
                break;
            case PtraceOps.EVENT_EXEC:
                Execed(task);
                break;
            case PtraceOps.EVENT_STOP:
                if (!task.Started) FirstStop(task);
                else if (sig is Signals.SIGSTOP or Signals.SIGTSTP or Signals.SIGTTIN or Signals.SIGTTOU) JobStop(task);
                else
                {
                    // SIGTRAP: the scheduler's PTRACE_INTERRUPT (Resume parks the task if it is still to stop),
                    // or the end of a job-control stop that was being listened to.
                    task.JobStopped = false;
                    Resume(task);
                }
                break;
            case 0:
                // signal-delivery-stop: hand the signal on, as the host would have delivered it.
                if (task.Phase is SyscallPhase.SkippedExit or SyscallPhase.ReissueEntry) AbandonReissue(task);
                else if (Syscalls.HostStatus.Ignores(task.HostTid, sig)) RestartInterrupted(task);
                if (tid == _initHostPid) ending?.Delivered(sig);
                TranslateSigInfo(task, sig);
                Resume(task, sig);
                break;
            default:
                Resume(task);
                break;
        }
    }


    /// <summary>
    /// A signal the guest ignores stops it here only because it is traced: Linux wakes a traced task for every signal, so
    /// that its tracer sees it, and natively an ignored one wakes nothing. A call that this woke and that ended with EINTR
    /// (sigtimedwait, epoll_wait: those that do not restart by themselves) is made again, so that the guest cannot tell it
    /// is traced by the way its calls end. (A timeout starts again with it.)
    /// </summary>
    private static void RestartInterrupted(GuestTask task)
    {
        if (!PtraceOps.GetRegs(task.HostTid, out var regs) || (long)regs.OrigRax < 0 || (long)regs.Rax != -Errno.EINTR) return;
        regs.Rax = regs.OrigRax;
        regs.Rip -= 2; // back onto the syscall instruction
        PtraceOps.SetRegs(task.HostTid, regs);
    }

    /// <summary>
    /// A group-stop (SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU): left stopped with PTRACE_LISTEN, so that the parent's
    /// wait sees it (WUNTRACED) and SIGCONT ends it. It wants no vCPU meanwhile, so a pending hold is dropped:
    /// the scheduler sees it is not running at its next tick.
    /// </summary>
    private void JobStop(GuestTask task)
    {
        task.JobStopped = true;
        task.Vcpu.Hold = Scheduling.HoldReason.None;
        PtraceOps.Listen(task.HostTid);
    }
}
