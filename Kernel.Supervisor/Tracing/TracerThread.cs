using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using UmlMicro.Contracts.Linux;
using UmlMicro.Contracts.Servers;
using UmlMicro.Contracts.Syscalls;
using UmlMicro.Supervisor.Guest;
using UmlMicro.Supervisor.Native;
using UmlMicro.Supervisor.Ptrace;
using UmlMicro.Supervisor.Syscalls;
using static UmlMicro.Supervisor.Native.Interop;

namespace UmlMicro.Supervisor.Tracing;

/// <summary>
/// The tracing thread of UML's TT mode: a dedicated host thread that starts the guest, seizes it, and
/// then services every stop of every guest task in a synchronous loop. ptrace only works from the
/// thread that attached a tracee, so nothing here may hop threads (no async, no thread pool).
/// Guest tasks are host threads and run in parallel on all host CPUs; they stop only at syscalls.
/// </summary>
internal sealed unsafe class TracerThread(Kernel kernel, TrapMode mode, bool observeAll, string launcher, string program, IReadOnlyList<string> argv)
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

    /// <summary>Runs the guest to the end on a new dedicated thread; returns when guest pid 1 and all its tasks are gone.</summary>
    public void Run(Action onStarted)
    {
        var thread = new Thread(() =>
        {
            try
            {
                Start();
                onStarted();
                Loop();
            }
            catch (Exception e)
            {
                _failure = e;
                KillAll();
                Drain();
            }
        })
        { Name = "tracer", IsBackground = true };
        thread.Start();
        thread.Join();
    }

    private void Start()
    {
        // One virtual CPU: the guest and its tracer share one host CPU, so a stop never pays a cross-CPU
        // wake-up (5-7x the cost of a same-CPU stop here, see bench/RESULTS.md). The guest inherits the pin.
        if (_k.Cpus == 1) Interop.PinToCpu(0, Math.Max(0, Interop.sched_getcpu()));
        int pid = Spawn();
        int status;
        if (waitpid(pid, &status, WUNTRACED | __WNOTHREAD) != pid || !WIFSTOPPED(status))
            throw new InvalidOperationException($"launcher did not stop (status 0x{status:x})");
        if (!PtraceOps.Seize(pid, TrapPath.Options(mode)))
            throw new InvalidOperationException($"PTRACE_SEIZE failed: errno {LastErrno}");
        var grant = _k.Sched.Call(s => s.StartInitAsync(pid));
        var init = _k.Tasks.GetOrAdd(pid);
        init.HostTgid = pid;
        init.Vpid = grant.Vpid;
        init.Vtid = grant.Vtid;
        init.Started = true;
        init.ResumeRequest = _idle;
        _k.Pids.Add(grant.Vtid, pid);
        Volatile.Write(ref _initHostPid, pid);
        // The launcher sits in a group-stop: the seize turns it into a ptrace stop, SIGCONT ends the group-stop.
        kill(pid, Signals.SIGCONT);
    }

    /// <summary>The umlmicro script leaves the signals the user's shell ignored here (a hex SigIgn mask).</summary>
    private const string SigIgnVariable = "_UMLMICRO_SIGIGN";

    /// <summary>posix_spawn (vfork-based, safe from managed code) of the launcher, from this thread so it is our child.</summary>
    private int Spawn()
    {
        string filter = mode == TrapMode.Seccomp ? SeccompFilter.ToHex(SeccompFilter.Build(everything: observeAll)) : "-";
        var args = new List<string> { launcher, Environment.GetEnvironmentVariable(SigIgnVariable) ?? "0", filter, program };
        args.AddRange(argv);
        var env = GuestEnvironment();
        var blocks = args.Concat(env).Select(a => Marshal.StringToCoTaskMemUTF8(a)).ToArray();
        try
        {
            var ptrs = stackalloc byte*[blocks.Length + 2];
            for (int i = 0; i < args.Count; i++) ptrs[i] = (byte*)blocks[i];
            ptrs[args.Count] = null;
            var envp = ptrs + args.Count + 1;
            for (int i = 0; i < env.Count; i++) envp[i] = (byte*)blocks[args.Count + i];
            envp[env.Count] = null;
            int pid;
            int err = posix_spawn(&pid, ptrs[0], 0, 0, ptrs, envp);
            if (err != 0) throw new InvalidOperationException($"cannot start {launcher}: errno {err}");
            return pid;
        }
        finally
        {
            foreach (var b in blocks) Marshal.FreeCoTaskMem(b);
        }
    }

    /// <summary>The supervisor's own environment block as it started (not .NET's view of it), less our own variable.</summary>
    private static List<string> GuestEnvironment()
    {
        var env = new List<string>();
        for (var p = Environ; *p != null; p++)
        {
            var entry = Marshal.PtrToStringUTF8((nint)(*p))!;
            if (!entry.StartsWith(SigIgnVariable + "=", StringComparison.Ordinal)) env.Add(entry);
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
            Dispatch(tid, status);
            if (_initStatus is not null && _k.Tasks.Count == 0) return;
        }
    }

    private void Dispatch(int tid, int status)
    {
        if (!WIFSTOPPED(status))
        {
            TaskGone(tid, status);
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
                else if (sig is Signals.SIGSTOP or Signals.SIGTSTP or Signals.SIGTTIN or Signals.SIGTTOU) PtraceOps.Listen(tid);
                else Resume(task);
                break;
            case 0:
                // signal-delivery-stop: hand the signal on, as the host would have delivered it.
                if (task.Phase is SyscallPhase.SkippedExit or SyscallPhase.ReissueEntry) AbandonReissue(task);
                Resume(task, sig);
                break;
            default:
                Resume(task);
                break;
        }
    }

    /// <summary>Resumes after a stop that is not a syscall stop, the way the task was running before it.</summary>
    private static void Resume(GuestTask task, int signal = 0) => PtraceOps.Resume(task.HostTid, task.ResumeRequest, signal);

    /// <summary>Resumes with <paramref name="request"/>, which also becomes how it resumes after other stops.</summary>
    private static void ResumeWith(GuestTask task, long request)
    {
        task.ResumeRequest = request;
        PtraceOps.Resume(task.HostTid, request, 0);
    }

    // ---------------------------------------------------------------- syscalls

    private void SyscallStop(GuestTask task)
    {
        if (!PtraceOps.GetSyscallInfo(task.HostTid, out var info)) return; // killed meanwhile: its exit comes next
        task.Call.ForgetRegs();
        switch (info.Op, task.Phase)
        {
            case (SyscallStopInfo.OpExit, SyscallPhase.AwaitExit):
                SyscallExit(task, info);
                break;
            case (SyscallStopInfo.OpExit, SyscallPhase.SkippedExit):
                task.Phase = SyscallPhase.ReissueEntry;
                ResumeWith(task, PtraceOps.PTRACE_SYSCALL);
                break;
            case (SyscallStopInfo.OpEntry, SyscallPhase.SkippedExit or SyscallPhase.ReissueEntry):
                task.Phase = SyscallPhase.AwaitExit; // the re-issued call runs on the host now
                ResumeWith(task, PtraceOps.PTRACE_SYSCALL);
                break;
            case (SyscallStopInfo.OpEntry or SyscallStopInfo.OpSeccomp, _):
                SyscallEntry(task, info);
                break;
            default:
                // An exit stop nobody waits for (e.g. after the tracer changed mode of a task): go on.
                ResumeWith(task, _idle);
                break;
        }
    }

    private void SyscallEntry(GuestTask task, in SyscallStopInfo stop)
    {
        var call = task.Call;
        var row = SyscallTable.Get((long)stop.NrOrResult);
        fixed (ulong* a = stop.Args) call.Begin(_k, task, row, new ReadOnlySpan<ulong>(a, 6));
        call.Injector = this;
        if (stop.Arch != SyscallStopInfo.ArchX86_64 || (stop.NrOrResult & SeccompFilter.X32Bit) != 0)
            call.Fail(Errno.ENOSYS); // int 0x80 and x32 calls would bypass the table: not part of this kernel's ABI
        else if (_k.Trace is not null) _traceArgs[task.HostTid] = Observability.TraceWriter.DecodeArgs(call);

        if (call.Emulated is null)
        {
            switch (row.Disposition)
            {
                case Disposition.Deny:
                    call.Fail(row.DenyErrno);
                    break;
                case Disposition.Emulate or Disposition.Rewrite:
                    try
                    {
                        RunHandler(call);
                    }
                    catch (TaskVanished)
                    {
                        return; // died while the kernel injected a call for it: already gone from the tables
                    }
                    break;
            }
        }
        try
        {
            if (call.Emulated is { } result) Skip(task, call, result);
            else HostRuns(task, call, (long)stop.NrOrResult);
        }
        catch (GuestFault)
        {
            // The task vanished between its stop and our GETREGS (SIGKILL): its exit comes next.
        }
    }

    /// <summary>The kernel decided the result: the host must not run the call.</summary>
    private void Skip(GuestTask task, SyscallCall call, long result)
    {
        ref var regs = ref call.Regs;
        switch (mode)
        {
            case TrapMode.Tt: // nullify: the host runs getpid, the exit stop sets the result
                regs.OrigRax = NullSyscall;
                PtraceOps.SetRegs(task.HostTid, regs);
                task.Phase = SyscallPhase.AwaitExit;
                ResumeWith(task, PtraceOps.PTRACE_SYSCALL);
                return;
            case TrapMode.Sysemu: // the host skips every call already
                regs.Rax = (ulong)result;
                break;
            case TrapMode.Seccomp: // -1 makes the kernel skip the call and return rax
                regs.OrigRax = ulong.MaxValue;
                regs.Rax = (ulong)result;
                break;
        }
        PtraceOps.SetRegs(task.HostTid, regs);
        call.Result = result;
        Finish(task, call, completed: true);
        ResumeWith(task, _idle);
    }

    /// <summary>The host runs the call (with the arguments a handler set); the exit stop finishes it when needed.</summary>
    private void HostRuns(GuestTask task, SyscallCall call, long nr)
    {
        switch (mode)
        {
            case TrapMode.Tt:
                if (call.ArgsChanged) PtraceOps.SetRegs(task.HostTid, call.Regs);
                task.Phase = SyscallPhase.AwaitExit;
                ResumeWith(task, PtraceOps.PTRACE_SYSCALL);
                break;
            case TrapMode.Sysemu:
                // Re-issue: back over the 2-byte syscall instruction with the number in rax, traced to its exit.
                ref var regs = ref call.Regs;
                regs.Rax = (ulong)nr;
                regs.Rip -= 2;
                PtraceOps.SetRegs(task.HostTid, regs);
                task.Phase = SyscallPhase.SkippedExit;
                ResumeWith(task, PtraceOps.PTRACE_SYSCALL);
                break;
            case TrapMode.Seccomp:
                if (call.ArgsChanged) PtraceOps.SetRegs(task.HostTid, call.Regs);
                if (NeedsExit(call))
                {
                    task.Phase = SyscallPhase.AwaitExit;
                    ResumeWith(task, PtraceOps.PTRACE_SYSCALL);
                }
                else
                {
                    Finish(task, call, completed: true);
                    ResumeWith(task, _idle);
                }
                break;
        }
    }

    /// <summary>
    /// sysemu: a signal arrived while a skipped call waits to be re-issued. The task already sits on its syscall
    /// instruction with the number in rax, so once the signal is dealt with (and a handler returned) it makes
    /// the call afresh; it must do so with the guest's own arguments, which the signal frame saves now.
    /// </summary>
    private void AbandonReissue(GuestTask task)
    {
        var call = task.Call;
        call.ForgetRegs();
        try
        {
            ref var regs = ref call.Regs;
            call.RestoreArgs(ref regs);
            PtraceOps.SetRegs(task.HostTid, regs);
        }
        catch (GuestFault)
        {
            return; // gone: its exit comes next
        }
        _traceArgs.Remove(task.HostTid);
        task.Phase = SyscallPhase.None;
        task.ResumeRequest = _idle;
    }

    /// <summary>Seccomp mode stops at an exit only when something must happen there.</summary>
    private bool NeedsExit(SyscallCall call) =>
        call.Exit is not null || call.ArgsChanged || call.Info.Ret == RetKind.Pid || observeAll;

    private static void RunHandler(SyscallCall call)
    {
        try
        {
            call.Kernel.Router.Handler(call.Info.Number)!(call);
        }
        catch (SyscallError e)
        {
            call.Fail(e.Errno);
        }
        catch (GuestFault)
        {
            call.Fail(Errno.EFAULT);
        }
    }

    private void SyscallExit(GuestTask task, in SyscallStopInfo stop)
    {
        task.Phase = SyscallPhase.None;
        var call = task.Call;
        try
        {
            if (call.Emulated is { } result)
            {
                call.Regs.Rax = (ulong)result; // tt: the nullified call returns the kernel's result
                call.Result = result;
                PtraceOps.SetRegs(task.HostTid, call.Regs);
            }
            else
            {
                FinishHostCall(task, call, stop.Result);
            }
        }
        catch (GuestFault)
        {
            // The task died in the call; its exit is next.
        }
        Finish(task, call, completed: true);
        ResumeWith(task, _idle);
    }

    /// <summary>Translates a pid result, runs the exit handler and gives the guest back its argument registers.</summary>
    private static void FinishHostCall(GuestTask task, SyscallCall call, long hostResult)
    {
        call.Result = hostResult;
        if (task.CloneResult is { } child && child.HostTid == hostResult)
            call.Result = child.Vtid; // the new task may have come and gone already: its grant, not the map, names it
        else if (call.Info.Ret == RetKind.Pid && call.Result > 0)
            call.Result = PidTranslation.ToVirtual(call, (int)call.Result);
        task.CloneResult = null;
        if (call.Exit is { } exit && !IsRestart(hostResult))
        {
            try
            {
                exit(call);
            }
            catch (GuestFault)
            {
                // The guest unmapped its own buffer during the call; what the host did stands.
            }
        }
        bool restoreArgs = call.ArgsChanged && !call.Execed;
        if (call.Result == hostResult && !restoreArgs) return; // nothing to write back: no GETREGS at all
        ref var regs = ref call.Regs;
        regs.Rax = (ulong)call.Result;
        if (restoreArgs) call.RestoreArgs(ref regs);
        PtraceOps.SetRegs(task.HostTid, regs);
    }

    /// <summary>-ERESTARTSYS and friends: the host will re-issue the call, which then stops at a fresh entry.</summary>
    private static bool IsRestart(long rax) => rax is -512 or -513 or -514 or -516;

    private readonly Dictionary<int, object[]> _traceArgs = new();

    private void Finish(GuestTask task, SyscallCall call, bool completed)
    {
        long end = Stopwatch.GetTimestamp();
        _k.Stats.RecordSyscall(call.Info.Number, end - call.StartTimestamp);
        if (_k.Trace is { } trace)
        {
            _traceArgs.Remove(task.HostTid, out var args);
            trace.Write(task, call, args, end, completed);
        }
    }

    // ---------------------------------------------------------------- syscall injection

    /// <summary>The task died while the kernel was making it run a syscall.</summary>
    private sealed class TaskVanished() : Exception("the task died during an injected syscall");

    /// <summary>
    /// Makes <paramref name="task"/>, stopped at the entry of a syscall, first run syscall <paramref name="nr"/> with
    /// <paramref name="args"/>, and returns its result; the task is then back at the entry of its own call, with its
    /// own registers, as if nothing happened. The injected call is run with PTRACE_SYSCALL to its exit stop (in
    /// sysemu, where the host skips the entry call anyway, it is re-issued over the syscall instruction); then the
    /// task goes back over the instruction and re-enters its own call. Signals that arrive meanwhile are held and
    /// sent again afterwards.
    /// </summary>
    public long Inject(GuestTask task, long nr, ReadOnlySpan<ulong> args)
    {
        int tid = task.HostTid;
        if (!PtraceOps.GetRegs(tid, out var saved)) throw new GuestFault(0);
        var regs = saved;
        for (int i = 0; i < args.Length; i++) regs.SetArg(i, args[i]);
        if (mode == TrapMode.Sysemu)
        {
            regs.Rax = (ulong)nr;
            regs.Rip -= 2;
        }
        else
        {
            regs.OrigRax = (ulong)nr;
        }
        var held = new List<int>();
        PtraceOps.SetRegs(tid, regs);
        PtraceOps.Resume(tid, PtraceOps.PTRACE_SYSCALL, 0);
        bool entered = mode != TrapMode.Sysemu; // sysemu first reports the skipped call's exit, then the injected entry
        long result;
        while (true)
        {
            var stop = WaitSyscallStop(task, PtraceOps.PTRACE_SYSCALL, held);
            if (stop.Op == SyscallStopInfo.OpExit && entered)
            {
                result = stop.Result;
                break;
            }
            if (stop.Op == SyscallStopInfo.OpEntry) entered = true;
            PtraceOps.Resume(tid, PtraceOps.PTRACE_SYSCALL, 0);
        }

        // Back over the syscall instruction with the task's own number: it enters its own call again.
        saved.Rip -= 2;
        saved.Rax = saved.OrigRax;
        PtraceOps.SetRegs(tid, saved);
        PtraceOps.Resume(tid, _idle, 0);
        while (WaitSyscallStop(task, _idle, held).Op is not (SyscallStopInfo.OpEntry or SyscallStopInfo.OpSeccomp))
            PtraceOps.Resume(tid, _idle, 0);
        foreach (var sig in held) Interop.tgkill(task.HostTgid, tid, sig);
        task.Call.ForgetRegs();
        return result;
    }

    /// <summary>Waits for the next syscall stop of <paramref name="task"/> alone, holding back signals and passing other stops.</summary>
    private SyscallStopInfo WaitSyscallStop(GuestTask task, long request, List<int> held)
    {
        int tid = task.HostTid, status;
        while (true)
        {
            int r = waitpid(tid, &status, __WALL);
            if (r < 0 && LastErrno == EINTR) continue;
            if (r != tid || !WIFSTOPPED(status))
            {
                if (r == tid) TaskGone(tid, status);
                throw new TaskVanished();
            }
            int sig = WSTOPSIG(status), ev = PtraceEvent(status);
            if (sig == PtraceOps.SyscallTrap || ev == PtraceOps.EVENT_SECCOMP)
            {
                if (PtraceOps.GetSyscallInfo(tid, out var info)) return info;
                continue;
            }
            if (ev == 0) held.Add(sig); // a signal for the guest: after the injection
            PtraceOps.Resume(tid, request, 0);
        }
    }

    // ---------------------------------------------------------------- task lifecycle

    /// <summary>PTRACE_EVENT_FORK/VFORK/CLONE in the creator: Sched grants the new task its ids.</summary>
    private void Cloned(GuestTask creator, int ev)
    {
        int childTid = (int)PtraceOps.EventMessage(creator.HostTid);
        var clone = creator.Clone ?? new PendingClone(ev == PtraceOps.EVENT_VFORK ? LinuxFlags.CLONE_VM | LinuxFlags.CLONE_VFORK : 0, 0, 0);
        creator.Clone = null;
        bool thread = ev == PtraceOps.EVENT_CLONE && clone.Has(LinuxFlags.CLONE_THREAD);
        var kind = thread ? CloneKind.Thread : CloneKind.Process;
        var grant = _k.Sched.Call(s => s.TaskCreatedAsync(
            new TaskCreation(creator.Vtid, childTid, kind, clone.Has(LinuxFlags.CLONE_PARENT) || thread)));

        var child = _k.Tasks.GetOrAdd(childTid);
        child.HostTgid = thread ? creator.HostTgid : childTid;
        child.Vpid = grant.Vpid;
        child.Vtid = grant.Vtid;
        child.Clone = clone;
        child.ResumeRequest = _idle;
        _k.Pids.Add(grant.Vtid, childTid);
        if (!thread)
        {
            _k.Mm.Post(m => m.SpaceCreatedAsync(creator.Vpid, child.Vpid, clone.Has(LinuxFlags.CLONE_VM)));
            _k.Vfs.Post(v => v.ProcessCreatedAsync(creator.Vpid, child.Vpid, clone.Has(LinuxFlags.CLONE_FS)));
        }
        if (clone.Has(LinuxFlags.CLONE_PARENT_SETTID) && clone.ParentTidPtr != 0)
            TryWrite(creator.HostTid, clone.ParentTidPtr, grant.Vtid);
        creator.CloneResult = (childTid, grant.Vtid);
        child.Identified = true;
        if (child.ParkedAtFirstStop) Release(child);
    }

    /// <summary>
    /// The first stop of a new task. It may come before its creator's clone event; then it waits,
    /// stopped, until the event has given it its ids.
    /// </summary>
    private void FirstStop(GuestTask task)
    {
        if (task.Identified) Release(task);
        else task.ParkedAtFirstStop = true;
    }

    private void Release(GuestTask task)
    {
        task.ParkedAtFirstStop = false;
        task.Started = true;
        // The host wrote its own tid at CLONE_CHILD_SETTID; the guest must find its virtual one there.
        if (task.Clone is { } clone && clone.Has(LinuxFlags.CLONE_CHILD_SETTID) && clone.ChildTidPtr != 0)
            TryWrite(task.HostTid, clone.ChildTidPtr, task.Vtid);
        task.Clone = null;
        ResumeWith(task, _idle);
    }

    private static void TryWrite(int tid, ulong addr, int value)
    {
        try
        {
            GuestMemory.Write(tid, addr, value);
        }
        catch (GuestFault)
        {
            // Linux ignores a bad tid pointer at clone too.
        }
    }

    /// <summary>PTRACE_EVENT_EXEC: a new image. A non-leader that execs takes over the leader's tid.</summary>
    private void Execed(GuestTask task)
    {
        int formerTid = (int)PtraceOps.EventMessage(task.HostTid);
        int tgid = task.HostTid;
        if (formerTid != tgid && _k.Tasks.Find(formerTid) is { } execer)
        {
            // The exec'ing thread is now the leader: it keeps its syscall state and takes the process's ids.
            _k.Tasks.Remove(formerTid, out _);
            _k.Pids.Remove(execer.Vtid);
            execer.HostTid = tgid;
            execer.Vtid = execer.Vpid;
            _k.Tasks.Add(execer);
            task = execer;
        }
        foreach (var other in _k.Tasks.Snapshot())
        {
            if (other.HostTgid != tgid || other == task) continue;
            _k.Tasks.Remove(other.HostTid, out _);
            _k.Pids.Remove(other.Vtid);
        }
        task.Call.Execed = true;
        task.Scratch = 0; // the new image has none of the old mappings
        _k.Sched.Post(s => s.ExecAsync(task.Vpid));
        _k.Mm.Post(m => m.SpaceExecAsync(task.Vpid));
        Resume(task);
    }

    private void TaskGone(int tid, int status)
    {
        if (!_k.Tasks.Remove(tid, out var task) || task is null) return;
        if (task.Phase != SyscallPhase.None) Finish(task, task.Call, completed: false);
        _k.Sched.Post(s => s.TaskExitedAsync(new TaskExit(task.Vtid, status)));
        if (task.IsThreadGroupLeader)
        {
            _k.Mm.Post(m => m.SpaceExitedAsync(task.Vpid));
            _k.Vfs.Post(v => v.ProcessExitedAsync(task.Vpid));
        }
        else
        {
            _k.Pids.Remove(task.Vtid); // a thread leaves no zombie
        }
        if (tid == _initHostPid)
        {
            _initStatus = status;
            KillAll(); // as when a pid namespace's init dies
        }
    }

    private void KillAll()
    {
        foreach (var t in _k.Tasks.Snapshot()) kill(t.HostTid, Signals.SIGKILL);
    }

    /// <summary>Reaps every remaining tracee after a failure, so nothing is left running.</summary>
    private void Drain()
    {
        int status;
        while (waitpid(-1, &status, __WALL | __WNOTHREAD) > 0 || LastErrno == EINTR)
            if (WIFSTOPPED(status)) KillAll();
    }
}
