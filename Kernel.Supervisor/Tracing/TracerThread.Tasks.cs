using UmlMicro.Contracts.Linux;
using UmlMicro.Contracts.Servers;
using UmlMicro.Supervisor.Guest;
using UmlMicro.Supervisor.Ptrace;
using static UmlMicro.Supervisor.Native.Interop;

namespace UmlMicro.Supervisor.Tracing;

/// <summary>Task lifecycle: clone events and first stops, exec, exit.</summary>
internal sealed unsafe partial class TracerThread
{
    /// <summary>
    /// A new task's ids: a number Sched set aside ahead, when the task may have it (PidReserve), with no round trip;
    /// otherwise Sched's answer. The reserve is filled when it runs low (one call for every few dozen tasks).
    /// </summary>
    private TaskGrant Grant(GuestTask creator, TaskCreation creation)
    {
        var reserve = _k.PidReserve;
        if (reserve.Count < PidReserve.Low) reserve.Add(_k.Sched.Call(s => s.ReservePidsAsync(PidReserve.Batch)));
        bool took = reserve.TryTake(creation.Pid, out int nr, out var passed);
        if (passed.Count > 0) _k.Sched.Post(nameof(ISchedServer.ReleasePidsAsync), passed);
        if (!took) return _k.Sched.Call(s => s.TaskCreatedAsync(creation));
        _k.Sched.Post(nameof(ISchedServer.TaskStartedAsync), creation with { Pid = nr });
        return new TaskGrant(creation.Kind == CloneKind.Thread ? creator.Vpid : nr, nr);
    }

    /// <summary>PTRACE_EVENT_FORK/VFORK/CLONE in the creator: Sched grants the new task its ids.</summary>
    private void Cloned(GuestTask creator, int ev)
    {
        int childTid = (int)PtraceOps.EventMessage(creator.HostTid);
        var clone = creator.Clone ?? new PendingClone(ev == PtraceOps.EVENT_VFORK ? LinuxFlags.CLONE_VM | LinuxFlags.CLONE_VFORK : 0, 0, 0);
        creator.Clone = null;
        bool thread = ev == PtraceOps.EVENT_CLONE && clone.Has(LinuxFlags.CLONE_THREAD);
        var kind = thread ? CloneKind.Thread : CloneKind.Process;
        // Without a pid namespace the guest's calls name tasks by host pid; in one, by the number it gave the task,
        // which Sched grants when it is free. A task already gone has none: the host answers ESRCH for it.
        int nsTid = _nsInitPid > 0 ? Syscalls.HostStatus.NsPid(childTid) ?? Syscalls.PidTranslation.NoSuchPid : childTid;
        var grant = Grant(creator, new TaskCreation(creator.Vtid, childTid, kind, clone.Has(LinuxFlags.CLONE_PARENT) || thread, _nsInitPid > 0 ? nsTid : 0));

        var child = _k.Tasks.GetOrAdd(childTid);
        child.HostTgid = thread ? creator.HostTgid : childTid;
        child.Vpid = grant.Vpid;
        child.Vtid = grant.Vtid;
        child.NsTid = nsTid;
        _k.Lineage.Forget(grant.Vtid);
        child.Clone = clone;
        child.ResumeRequest = _idle;
        _k.Pids.Add(grant.Vtid, childTid, nsTid);
        if (!thread)
        {
            _k.Processes.Started(grant.Vpid);
            _k.Processes.Release(creator);
            _k.Mm.Post(nameof(IMmServer.SpaceCreatedAsync), creator.Vpid, child.Vpid, clone.Has(LinuxFlags.CLONE_VM));
            _k.Breaks.Created(creator.Vpid, child.Vpid, clone.Has(LinuxFlags.CLONE_VM));
            _k.Names?.CwdsChanged();
            _k.Vfs.Post(nameof(IVfsServer.ProcessCreatedAsync), creator.Vpid, child.Vpid, clone.Has(LinuxFlags.CLONE_FS));
        }
        if (clone.Has(LinuxFlags.CLONE_PARENT_SETTID) && clone.ParentTidPtr != 0)
            TryWrite(creator.HostTid, clone.ParentTidPtr, grant.Vtid);
        creator.CloneResult = (childTid, nsTid, grant.Vtid);
        child.Identified = true;
        if (child.ParkedAtFirstStop) Release(child);
        // A vfork parent blocks until its child execs or exits: the child gets a vCPU now, not at the next tick.
        if (ev == PtraceOps.EVENT_VFORK) _k.Vcpus.MayBlock(creator.Vcpu);
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
        if (task.Clone?.GuestArg0 is { } arg0 && PtraceOps.GetRegs(task.HostTid, out var regs))
        {
            regs.SetArg(0, arg0); // the creator's registers, as the guest set them, not as the kernel rewrote them
            PtraceOps.SetRegs(task.HostTid, regs);
        }
        task.Clone = null;
        task.ResumeRequest = _idle;
        _k.HostCpus.Place(task);
        if (task.IsThreadGroupLeader) _k.HostCpus.ProcessesChanged(_k.Tasks);
        if (_k.Vcpus.Admit(task.Vcpu, _idle)) PtraceOps.Resume(task.HostTid, _idle, 0);
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
            _k.Vcpus.Forget(task.Vcpu); // the old leader is gone; the execer keeps its own standing
            execer.HostTid = tgid;
            execer.NsTid = task.NsTid;
            execer.Vtid = execer.Vpid;
            _k.Tasks.Add(execer);
            task = execer;
        }
        foreach (var other in _k.Tasks.Snapshot())
        {
            if (other.HostTgid != tgid || other == task) continue;
            _k.Tasks.Remove(other.HostTid, out _);
            _k.Pids.Remove(other.Vtid);
            _k.Vcpus.Forget(other.Vcpu);
        }
        task.Call.Execed = true;
        task.Scratch = 0; // the new image has none of the old mappings
        task.Creds = null; // nor, perhaps, the old capabilities
        _k.Sched.Post(nameof(ISchedServer.ExecAsync), task.Vpid);
        // The MM map starts from what the host's execve mapped: program, interpreter, stack, vdso. What MM grants
        // the new image (its break, a first window) spares its start two round trips.
        int vpid = task.Vpid;
        var grant = _k.Mm.Call(m => m.SpaceExecAsync(vpid, HostMaps.Read(tgid)));
        _k.Breaks.Execed(vpid, grant.Break);
        _k.Placement.Granted(vpid, grant.Window);
        Resume(task);
    }

    private void TaskGone(int tid, int status)
    {
        if (!_k.Tasks.Remove(tid, out var task) || task is null) return;
        _k.Lineage.Invalidate(); // its children may have a new parent now
        if (task.Phase != SyscallPhase.None)
        {
            // A call that made a name may have made it before the task died, with no exit stop to say so.
            if (task.Call.MakesName) _k.Names?.Created();
            Finish(task, task.Call, completed: false);
        }
        _k.Processes.Release(task);
        _k.Vcpus.Forget(task.Vcpu);
        _k.Sched.Post(nameof(ISchedServer.TaskExitedAsync), new TaskExit(task.Vtid, status));
        if (task.IsThreadGroupLeader)
        {
            _k.Mm.Post(nameof(IMmServer.SpaceExitedAsync), task.Vpid);
            _k.Breaks.Forget(task.Vpid);
            _k.Placement.Forget(task.Vpid);
            _k.Vfs.Post(nameof(IVfsServer.ProcessExitedAsync), task.Vpid);
            _k.HostCpus.ProcessesChanged(_k.Tasks);
            if (tid != _initHostPid && ReapedByHost(task)) _k.Reaped(task.Vpid);
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

    /// <summary>
    /// Whether the host released the process as soon as the tracer let go of it, with no wait of the guest's to tell
    /// the kernel: its parent ignores SIGCHLD (or set SA_NOCLDWAIT). Otherwise it is a zombie on the host until its
    /// parent waits, or a wait already in progress took it, and that wait's exit stop drops it.
    /// </summary>
    private bool ReapedByHost(GuestTask leader)
    {
        if (Directory.Exists($"/proc/{leader.HostTgid}")) return false;
        foreach (var t in _k.Tasks.Snapshot())
            if (t.Phase != SyscallPhase.None && t.Call.Info.Name is "wait4" or "waitid") return false;
        return true;
    }

    private void KillAll()
    {
        // The namespace's init first: its end kills every task in the namespace, traced or not.
        if (_nsInitPid > 0) kill(_nsInitPid, Signals.SIGKILL);
        foreach (var t in _k.Tasks.Snapshot()) kill(t.HostTid, Signals.SIGKILL);
        if (_tickerPid > 0) kill(_tickerPid, Signals.SIGKILL);
        if (_doorbell is { } bell) kill(bell.Pid, Signals.SIGKILL);
    }

    /// <summary>Reaps every remaining tracee after a failure, so nothing is left running.</summary>
    private void Drain()
    {
        int status, r;
        while ((r = waitpid(-1, &status, __WALL | __WNOTHREAD)) > 0 || LastErrno == EINTR)
        {
            if (r == _nsInitPid) _nsInitPid = 0; // reaped: its number may be anyone's now
            if (r > 0 && WIFSTOPPED(status)) KillAll();
        }
    }
}
