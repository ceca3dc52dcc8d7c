using System.Diagnostics;
using UmlMicro.Contracts.Linux;
using UmlMicro.Contracts.Syscalls;
using UmlMicro.Supervisor.Guest;
using UmlMicro.Supervisor.Ptrace;
using UmlMicro.Supervisor.Syscalls;
using static UmlMicro.Supervisor.Native.Interop;

namespace UmlMicro.Supervisor.Tracing;

/// <summary>Syscall stops: entry, exit and the sysemu re-issue, for each trap mode.</summary>
internal sealed unsafe partial class TracerThread
{
    private void SyscallStop(GuestTask task)
    {
        if (!PtraceOps.GetSyscallInfo(task.HostTid, out var info)) return; // killed meanwhile: its exit comes next
        task.Call.ForgetRegs();
        NoteStop(task);
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
        else if (stop.Op == SyscallStopInfo.OpSeccomp && stop.SeccompData != TrapPath.OurData)
            call.Fail(Errno.ENOSYS); // the guest's own filter said RET_TRACE, and the guest has no tracer of its own
        else if (_k.Trace is not null) call.TraceArgs = Observability.TraceWriter.DecodeArgs(call);

        if (call.Emulated is null)
        {
            switch (row.Disposition)
            {
                case Disposition.Deny:
                    call.Fail(row.DenyErrno);
                    break;
                case Disposition.Emulate or Disposition.Rewrite:
                    if (ServeOffTracer(task, call, (long)stop.NrOrResult)) return;
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
        Decided(task, call, (long)stop.NrOrResult);
    }

    /// <summary>The kernel decided the call (its handler ran, here or on a syscall worker): the host skips it or runs it.</summary>
    private void Decided(GuestTask task, SyscallCall call, long nr)
    {
        try
        {
            if (call.Emulated is { } result) Skip(task, call, result);
            else HostRuns(task, call, nr);
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
        // The new task may have come and gone already (a child the host reaped at once, its parent ignoring SIGCHLD):
        // its grant, not the map, names it. The host returns its pid in the creator's pid namespace.
        if (task.CloneResult is { } child && hostResult > 0
            && (hostResult == child.HostTid || hostResult == child.NsTid || child.NsTid == PidTranslation.NoSuchPid))
            call.Result = child.Vtid;
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

    private void Finish(GuestTask task, SyscallCall call, bool completed)
    {
        long end = Stopwatch.GetTimestamp();
        _k.Stats.RecordSyscall(call.Info.Number, end - call.StartTimestamp);
        if (_k.Trace is { } trace)
        {
            trace.Write(task, call, end, completed);
        }
    }
}
