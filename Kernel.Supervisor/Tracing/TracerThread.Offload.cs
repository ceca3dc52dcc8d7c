using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;
using UmlMicro.Contracts.Linux;
using UmlMicro.Supervisor.Guest;
using UmlMicro.Supervisor.Ptrace;
using UmlMicro.Supervisor.Syscalls;
using static UmlMicro.Supervisor.Native.Interop;

namespace UmlMicro.Supervisor.Tracing;

/// <summary>
/// Syscalls served off the tracer thread, so that several guest tasks can be inside server calls at once (SMP).
/// <para>
/// A handler that waits for a server (the VFS resolving a path) would hold the tracer for the round trip, and with
/// it every other task's stops. When the guest has other tasks, such a call is handed to a syscall worker instead and
/// the tracer goes back to waitpid. The worker runs the handler: guest memory is read and written with
/// process_vm_readv/writev, which any thread of the supervisor may use, and the registers were read at the stop;
/// only handlers that need no other ptrace request run there (<see cref="SyscallRouter.RunsOffTracer"/>), and the
/// task's scratch area, whose creation is an injection, is made before.
/// </para>
/// <para>
/// The worker then hands the decided call back and rings the doorbell: a traced child (<c>umlmicro-launch
/// --doorbell</c>) asleep in pause(). The tracer can sleep nowhere but in waitpid, and the doorbell's signal stop
/// wakes it like any other stop; the tracer swallows the signal, finishes every handed-back call (registers, resume)
/// exactly as if its handler had run inline, and lets the doorbell sleep again. The bell is rung through a pidfd, so
/// a worker can never signal a later owner of its pid.
/// </para>
/// </summary>
internal sealed unsafe partial class TracerThread
{
    /// <summary>Enough to keep every server busy: a server handles one message at a time.</summary>
    private const int SyscallWorkerCount = 4;

    private sealed record Doorbell(int Pid, int Pidfd);

    /// <summary>A call a worker decided (or failed to: <paramref name="Failure"/> is the kernel's own error).</summary>
    private sealed record Served(GuestTask Task, long Nr, Exception? Failure);

    private readonly ConcurrentQueue<Served> _served = new();
    private SyscallWorkers? _workers;
    private volatile Doorbell? _doorbell;
    private int _bellRung;
    private int _inFlight;

    /// <summary>At a routed call's entry: hands it to a worker if it may and should run off the tracer; false to run it inline.</summary>
    private bool ServeOffTracer(GuestTask task, SyscallCall call, long nr)
    {
        if (!_k.Router.RunsOffTracer(call.Info.Number) || !OthersActive()) return false;
        bool served;
        try
        {
            served = ServedFromGrants(call);
        }
        catch (TaskVanished)
        {
            return true; // killed while the kernel injected a call for it (a scratch area): already gone from the tables
        }
        if (served)
        {
            Decided(task, call, nr);
            return true;
        }
        if (_doorbell is null && !StartDoorbell()) return false;
        try
        {
            // A worker may make no ptrace request: the scratch area a rewritten path goes to is injected now, and the
            // registers are read after that (an injection leaves the task at a new stop of its call).
            if (task.Scratch == 0) call.ScratchSlotAddress(0);
            call.LoadRegs();
        }
        catch (Exception e) when (e is GuestFault or TaskVanished)
        {
            return true; // killed meanwhile: its exit comes next
        }
        catch (SyscallError)
        {
            return false; // no scratch area: the handler fails inline as it would have
        }
        call.Injector = null;
        call.OffTracer = true;
        _workers ??= new SyscallWorkers(SyscallWorkerCount, Serve);
        _k.Stats.ServedOffTracer(Interlocked.Increment(ref _inFlight));
        _workers.Run(task, nr);
        return true;
    }

    /// <summary>
    /// Many such calls are answered by what the supervisor keeps (a VFS lease, Sched's getppid answer), which costs
    /// less than the hop to a worker and back: the handler is tried here first, and stops, having changed nothing,
    /// at the first server it would ask.
    /// </summary>
    private static bool ServedFromGrants(SyscallCall call)
    {
        call.GrantsOnly = true;
        try
        {
            RunHandler(call);
            return true;
        }
        catch (ServerNeeded)
        {
            return false;
        }
        finally
        {
            call.GrantsOnly = false;
        }
    }

    /// <summary>Another task stopped this recently: a call of this one served inline would likely hold its stops up.</summary>
    private static readonly long ActiveWindow = System.Diagnostics.Stopwatch.Frequency / 500; // 2 ms

    private int _lastStopTid;
    private long _lastSwitch;

    /// <summary>At every syscall stop: when did the stopping task last change.</summary>
    private void NoteStop(GuestTask task)
    {
        if (task.HostTid == _lastStopTid) return;
        bool first = _lastStopTid == 0; // guest pid 1's first call is no change
        _lastStopTid = task.HostTid;
        if (first) return;
        _lastSwitch = System.Diagnostics.Stopwatch.GetTimestamp();
    }

    /// <summary>
    /// Whether other tasks have been stopping lately. Serving a call off the tracer costs a worker's wake-up and a
    /// ring; that pays only when other tasks need the tracer meanwhile, and a guest whose other threads sleep (a main
    /// thread in pthread_join) should not pay it.
    /// </summary>
    private bool OthersActive() =>
        _lastSwitch != 0 && System.Diagnostics.Stopwatch.GetTimestamp() - _lastSwitch < ActiveWindow && _k.Tasks.Count > 1;

    /// <summary>On a worker: runs the handler, hands the call back and rings the doorbell.</summary>
    private void Serve(GuestTask task, long nr)
    {
        var call = task.Call;
        Exception? failure = null;
        try
        {
            RunHandler(call);
        }
        catch (Exception e)
        {
            failure = e;
        }
        _served.Enqueue(new Served(task, nr, failure));
        Interlocked.Decrement(ref _inFlight);
        RingDoorbell();
    }

    /// <summary>From any thread: the tracer has work handed back (a served call, Sched's run-policy decision).</summary>
    private void RingDoorbell()
    {
        if (Interlocked.Exchange(ref _bellRung, 1) == 0 && _doorbell is { } bell)
            pidfd_send_signal(bell.Pidfd, Signals.SIGUSR1, 0, 0);
    }

    /// <summary>A stop (or the end) of the doorbell: every call handed back is finished.</summary>
    private void Rung(int status)
    {
        if (!WIFSTOPPED(status))
        {
            // Killed from outside: a new one, before anything is taken, so that no ring can go to the dead one unseen.
            _doorbell = null;
            StartDoorbell();
        }
        Volatile.Write(ref _bellRung, 0);
        _k.Vcpus.TakeDecision();
        FinishServed();
        if (WIFSTOPPED(status)) PtraceOps.Resume(_doorbell!.Pid, PtraceOps.PTRACE_CONT, 0);
    }

    private void FinishServed()
    {
        while (_served.TryDequeue(out var done))
        {
            var task = done.Task;
            if (_k.Tasks.Find(task.HostTid) != task)
            {
                // It died (or another thread's execve took its tid) while its call was served: nothing to resume.
                Finish(task, task.Call, completed: false);
                continue;
            }
            if (done.Failure is { } failure) ExceptionDispatchInfo.Throw(failure); // the kernel's own failure
            task.Call.Injector = this;
            task.Call.OffTracer = false;
            Decided(task, task.Call, done.Nr);
        }
    }

    /// <summary>Spawns the doorbell and seizes it while it stops itself, then lets it sleep (false if it cannot start).</summary>
    private bool StartDoorbell()
    {
        int pid = StartHelperChild([launcher, "--doorbell"]);
        if (pid < 0) return false;
        int pidfd = pidfd_open(pid, 0);
        if (pidfd < 0)
        {
            int status;
            kill(pid, Signals.SIGKILL);
            waitpid(pid, &status, __WALL | __WNOTHREAD);
            return false;
        }
        _doorbell = new Doorbell(pid, pidfd);
        kill(pid, Signals.SIGCONT); // out of its group-stop; any stop of it is handled as a ring
        return true;
    }

    /// <summary>At the end. Its pidfd stays open: a worker still finishing a call for a task that is gone may ring it.</summary>
    private void StopDoorbell()
    {
        _workers?.Dispose();
        if (_doorbell is not { } bell) return;
        int status;
        kill(bell.Pid, Signals.SIGKILL);
        while (waitpid(bell.Pid, &status, __WALL | __WNOTHREAD) < 0 && LastErrno == EINTR) { }
        _doorbell = null;
    }
}

/// <summary>Dedicated threads that serve syscalls off the tracer (a server call is synchronous, and measured a
/// better p99 from a dedicated thread than from the thread pool).</summary>
internal sealed class SyscallWorkers : IDisposable
{
    private readonly BlockingCollection<(GuestTask Task, long Nr)> _jobs = new();

    /// <summary><paramref name="serve"/> runs a task's call (its <see cref="GuestTask.Call"/>, syscall number nr) on a worker.</summary>
    public SyscallWorkers(int count, Action<GuestTask, long> serve)
    {
        for (int i = 0; i < count; i++)
            new Thread(() =>
            {
                foreach (var (task, nr) in _jobs.GetConsumingEnumerable()) serve(task, nr);
            })
            { Name = $"syscall worker {i}", IsBackground = true }.Start();
    }

    public void Run(GuestTask task, long nr) => _jobs.Add((task, nr));

    public void Dispose() => _jobs.CompleteAdding();
}
