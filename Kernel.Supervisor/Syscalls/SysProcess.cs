using UmlMicro.Contracts.Linux;
using UmlMicro.Contracts.Servers;
using UmlMicro.Supervisor.Guest;

namespace UmlMicro.Supervisor.Syscalls;

/// <summary>
/// Process and thread lifecycle: ids, fork/vfork/clone/clone3, execve, wait4/waitid, process groups.
/// The ids of the calling task come from its cached Sched grant; creation, exec and exit reach Sched
/// through the tracer's ptrace events (see <see cref="Tracing.TracerThread"/>).
/// </summary>
internal static class SysProcess
{
    private const ulong NamespaceFlags = LinuxFlags.CLONE_NEWNS | LinuxFlags.CLONE_NEWUSER | LinuxFlags.CLONE_NEWPID |
        LinuxFlags.CLONE_NEWNET | 0x04000000 /* NEWIPC */ | 0x08000000 /* NEWUTS */ | 0x02000000 /* NEWCGROUP */;
    private const int SIGCHLD = 17;

    public static void Register(Dictionary<string, EntryHandler> h)
    {
        h["getpid"] = c => c.Return(c.Task.Vpid);
        h["gettid"] = c => c.Return(c.Task.Vtid);
        h["getppid"] = GetPpid;
        h["getsid"] = GetSid;
        h["set_tid_address"] = HostRuns; // the host must record the address; the result (a tid) is translated
        h["getpgrp"] = HostRuns;
        h["setsid"] = c => c.AtExit(NoteNewSession);
        h["setpgid"] = SetPgid;
        h["fork"] = c => BeginClone(c, SIGCHLD, 0, 0);
        h["vfork"] = c => BeginClone(c, LinuxFlags.CLONE_VM | LinuxFlags.CLONE_VFORK | SIGCHLD, 0, 0);
        h["clone"] = Clone;
        h["clone3"] = Clone3;
        h["execve"] = c => Exec(c, -1, 0, follow: true);
        h["execveat"] = c => Exec(c, 0, 1, follow: (c.IntArg(4) & LinuxFlags.AT_SYMLINK_NOFOLLOW) == 0);
        // A process's last look at its own memory, for --stats: the host's resident counts are gone once it ends.
        h["exit_group"] = c => c.Kernel.Stats.NoteResident(c.Task.Vpid, c.Task.HostTgid);
        h["wait4"] = Wait4;
        h["waitid"] = Waitid;
        h["prctl"] = Prctl;
    }

    /// <summary>
    /// prctl: the host carries it out. PR_SET_CHILD_SUBREAPER changes where the host reparents an orphan, so Sched's
    /// tree must follow it (getppid, procfs, wait): told once the host has accepted it.
    /// </summary>
    private static void Prctl(SyscallCall c)
    {
        if (c.IntArg(0) != LinuxFlags.PR_SET_CHILD_SUBREAPER) return;
        bool on = c.Arg(1) != 0;
        c.AtExit(x =>
        {
            if (x.Result == 0) x.Kernel.Sched.Post(nameof(ISchedServer.ChildSubreaperAsync), x.Task.Vpid, on);
        });
    }

    /// <summary>
    /// execve: the VFS resolves the file. A "#!" script the host can only reach by a host path is started the way
    /// Linux's binfmt_script does, but by the kernel: the host runs the interpreter with argv = interpreter, its
    /// one argument, the script's name as the guest gave it (so the interpreter opens it through the VFS, and $0 is
    /// what the guest expects), then argv[1...]. The new argv lives in the task's scratch area.
    /// </summary>
    private static void Exec(SyscallCall c, int dirFdArg, int pathArg, bool follow)
    {
        SysCreds.Forget(c); // the new image may have other capabilities (asked for below with the old ones, as Linux checks them)
        c.Kernel.Stats.NoteResident(c.Task.Vpid, c.Task.HostTgid); // the old image's peak: exec starts a new count
        var r = SysFile.Resolve(c, dirFdArg, pathArg, PathOp.Exec, follow);
        if (r?.Interpreter is not { } interpreter) return;
        int argvArg = pathArg + 1;
        var strings = new List<byte[]> { BytesZ(interpreter) };
        if (r.InterpreterArg is { } arg) strings.Add(BytesZ(arg));
        strings.Add(BytesZ(c.ReadPath(pathArg)));
        var rest = new List<ulong>();
        ulong argv = c.Arg(argvArg);
        for (int i = 1; argv != 0; i++)
        {
            ulong p = GuestMemory.Read<ulong>(c.Tid, argv + (ulong)(8 * i));
            if (p == 0) break;
            rest.Add(p);
            if (rest.Count > SyscallCall.ScratchBytesFrom(1) / 8) throw new SyscallError(Errno.E2BIG);
        }
        int pointers = 8 * (strings.Count + rest.Count + 1);
        if (pointers + strings.Sum(b => b.Length) > SyscallCall.ScratchBytesFrom(1)) throw new SyscallError(Errno.E2BIG);
        ulong table = c.ScratchSlotAddress(1), text = table + (ulong)pointers;
        var vector = new List<ulong>();
        foreach (var b in strings)
        {
            GuestMemory.Write(c.Tid, text, b);
            vector.Add(text);
            text += (ulong)b.Length;
        }
        vector.AddRange(rest);
        vector.Add(0);
        GuestMemory.Write(c.Tid, table, System.Runtime.InteropServices.MemoryMarshal.AsBytes(vector.ToArray().AsSpan()));
        c.SetArg(argvArg, table);
    }

    /// <summary>A string the guest gave or the VFS answered, as the bytes it stands for (PathBytes), NUL-terminated.</summary>
    private static byte[] BytesZ(string s) => UmlMicro.Contracts.Linux.PathBytes.EncodeZ(s);

    /// <summary>The host runs the call untouched; the table's result kind does the translation.</summary>
    private static void HostRuns(SyscallCall c) { }

    /// <summary>Questions only Sched can answer, with nothing to do on the host: they may be served off the tracer thread.</summary>
    public static readonly string[] OffTracer = ["getppid", "getsid"];

    private static void GetPpid(SyscallCall c)
    {
        var lineage = c.Kernel.Lineage;
        if (lineage.TryParent(c.Task.Vpid, out int ppid))
        {
            c.Return(ppid);
            return;
        }
        long generation = lineage.Generation;
        c.ServerUsed = UmlMicro.Contracts.Syscalls.Server.Sched;
        ppid = c.Kernel.Sched.Call(s => s.ParentAsync(c.Task.Vpid));
        lineage.KeepParent(c.Task.Vpid, ppid, generation);
        c.Return(ppid);
    }

    /// <summary>Sessions are Sched's: guest pid 1 leads one, though on the host it stays in the user's (to keep the terminal).</summary>
    private static void GetSid(SyscallCall c)
    {
        int vpid = c.IntArg(0) == 0 ? c.Task.Vpid : c.IntArg(0);
        var lineage = c.Kernel.Lineage;
        if (lineage.TrySession(vpid, out int sid))
        {
            c.Return(sid);
            return;
        }
        long generation = lineage.Generation;
        c.ServerUsed = UmlMicro.Contracts.Syscalls.Server.Sched;
        var process = c.Kernel.ProcessList.Ask().FirstOrDefault(p => p.Vpid == vpid);
        if (process is null) throw new SyscallError(Errno.ESRCH);
        lineage.KeepSession(vpid, process.Sid, generation);
        c.Return(process.Sid);
    }

    /// <summary>
    /// clone: CLONE_UNTRACED would keep the new task from being attached (PTRACE_O_TRACECLONE/FORK do not apply to
    /// it), so it would run every call on the host, outside the kernel. The host is given the flags without it;
    /// for an untraced caller (the guest's view) the flag changes nothing, so the guest sees the native result.
    /// </summary>
    private static void Clone(SyscallCall c)
    {
        ulong flags = c.Arg(0);
        BeginClone(c, flags & ~LinuxFlags.CLONE_UNTRACED, c.Arg(2), c.Arg(3));
        if ((flags & LinuxFlags.CLONE_UNTRACED) != 0) HandOver(c, flags & ~LinuxFlags.CLONE_UNTRACED);
    }

    /// <summary>
    /// The host runs the clone with <paramref name="arg0"/> as its first argument; the creator gets the guest's back
    /// at its exit stop, the new task at its first stop. Nothing to do when the kernel already decided the result.
    /// </summary>
    private static void HandOver(SyscallCall c, ulong arg0)
    {
        if (c.Emulated is not null || c.Task.Clone is not { } pending) return;
        c.Task.Clone = pending with { GuestArg0 = c.Arg(0) };
        c.SetArg(0, arg0);
    }

    private static void BeginClone(SyscallCall c, ulong flags, ulong parentTid, ulong childTid)
    {
        // The host refuses copy_process's invalid combinations (EINVAL) before anything else: before namespaces are
        // refused (EPERM), before the process limit (EAGAIN) and before the copy's memory (ENOMEM).
        bool invalid = InvalidCombination(flags);
        if (!invalid && (flags & NamespaceFlags) != 0) throw new SyscallError(Errno.EPERM);
        bool counted = !invalid && (flags & LinuxFlags.CLONE_THREAD) == 0 && c.Kernel.Processes.Max > 0;
        if (counted) c.Kernel.Processes.Reserve(c.Kernel, c.Task);
        // sched_fork, after the process count and before the memory: a SCHED_DEADLINE task may not fork.
        if (!invalid && c.Task.DeadlineNoFork)
        {
            if (counted) c.Kernel.Processes.Release(c.Task);
            throw new SyscallError(Errno.EAGAIN);
        }
        if (!invalid && (flags & LinuxFlags.CLONE_VM) == 0 && !SysMmap.ChargeFork(c))
        {
            if (counted) c.Kernel.Processes.Release(c.Task);
            return;
        }
        if (counted)
        {
            var settleCharge = c.Exit; // fork's commit charge is settled at the exit too
            c.AtExit(x =>
            {
                settleCharge?.Invoke(x);
                if (x.Result < 0) x.Kernel.Processes.Release(x.Task); // no child: the host refused the call
            });
        }
        c.Task.Clone = new PendingClone(flags, parentTid, childTid);
    }

    /// <summary>copy_process's EINVAL checks; the host makes them again for every call it runs.</summary>
    private static bool InvalidCombination(ulong flags)
    {
        bool Both(ulong a, ulong b) => (flags & (a | b)) == (a | b);
        return Both(LinuxFlags.CLONE_NEWNS, LinuxFlags.CLONE_FS) || Both(LinuxFlags.CLONE_NEWUSER, LinuxFlags.CLONE_FS)
            || ((flags & LinuxFlags.CLONE_THREAD) != 0 && (flags & LinuxFlags.CLONE_SIGHAND) == 0)
            || ((flags & LinuxFlags.CLONE_SIGHAND) != 0 && (flags & LinuxFlags.CLONE_VM) == 0)
            || ((flags & LinuxFlags.CLONE_THREAD) != 0 && (flags & (LinuxFlags.CLONE_NEWUSER | LinuxFlags.CLONE_NEWPID)) != 0);
    }

    private const int PageSize = 4096;

    /// <summary>
    /// clone3: the arguments are a struct in guest memory. With CLONE_UNTRACED (see <see cref="Clone"/>) the host is
    /// given a copy in the task's scratch area without the flag; the guest's own struct is never written, and the
    /// host reads the copy, so another guest thread cannot put the flag back between this look and the host's.
    /// </summary>
    private static void Clone3(SyscallCall c)
    {
        // struct clone_args: flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size
        ulong size = c.Arg(1);
        if (size < 64) throw new SyscallError(Errno.EINVAL);
        ulong args = c.Arg(0);
        ulong flags = GuestMemory.Read<ulong>(c.Tid, args);
        if (size >= 80 && GuestMemory.Read<ulong>(c.Tid, args + 72) != 0)
            throw new SyscallError(Errno.EPERM); // set_tid would name host pids
        ulong parentTid = GuestMemory.Read<ulong>(c.Tid, args + 24), childTid = GuestMemory.Read<ulong>(c.Tid, args + 16);
        BeginClone(c, flags & ~LinuxFlags.CLONE_UNTRACED, parentTid, childTid);
        // Larger than a page is the host's E2BIG, and clones nothing.
        if ((flags & LinuxFlags.CLONE_UNTRACED) == 0 || size > PageSize || c.Emulated is not null) return;
        var copy = new byte[size];
        GuestMemory.Read(c.Tid, args, copy);
        BitConverter.TryWriteBytes(copy, flags & ~LinuxFlags.CLONE_UNTRACED);
        ulong scratch = c.ScratchSlotAddress(0);
        GuestMemory.Write(c.Tid, scratch, copy);
        HandOver(c, scratch);
    }

    private static void SetPgid(SyscallCall c)
    {
        // Linux defaults a zero pgid to the pid and refuses a negative one before it looks the pid up.
        int pgid = c.IntArg(1) != 0 ? c.IntArg(1) : c.IntArg(0);
        if (pgid < 0) throw new SyscallError(Errno.EINVAL);
        PidTranslation.TranslateArgs(c);
        c.AtExit(x =>
        {
            if (x.Result != 0) return;
            int vpid = x.IntArg(0) == 0 ? x.Task.Vpid : x.IntArg(0);
            int vpgid = x.IntArg(1) == 0 ? vpid : x.IntArg(1);
            x.Kernel.Sched.Post(nameof(ISchedServer.GroupChangedAsync), new GroupChange(vpid, vpgid, NewSession: false));
        });
    }

    private static void NoteNewSession(SyscallCall c)
    {
        if (c.Result <= 0) return;
        c.Kernel.Lineage.Invalidate();
        c.Kernel.Sched.Post(nameof(ISchedServer.GroupChangedAsync), new GroupChange(c.Task.Vpid, c.Task.Vpid, NewSession: true));
    }

    private const int WNOHANG = 1;

    private static void Wait4(SyscallCall c)
    {
        int pid = c.IntArg(0);
        if (pid != -1) PidTranslation.TranslateArg(c, 0);
        if ((c.IntArg(2) & WNOHANG) == 0) c.Kernel.Vcpus.MayBlock(c.Task.Vcpu);
        c.AtExit(x =>
        {
            if (x.Result <= 0) return;
            ulong statusPtr = x.Arg(1);
            const int WUNTRACED = 2, WCONTINUED = 8;
            bool reaped = statusPtr != 0
                ? ExitedStatus(GuestMemory.Read<int>(x.Tid, statusPtr))
                : (x.IntArg(2) & (WUNTRACED | WCONTINUED)) == 0;
            if (reaped) Reaped(x, (int)x.Result);
        });
    }

    private static bool ExitedStatus(int status) => (status & 0x7f) != 0x7f && (status & 0xffff) != 0xffff;

    private static void Waitid(SyscallCall c)
    {
        const int P_PID = 1, P_PGID = 2, WNOWAIT = 0x01000000, WEXITED = 4;
        int idtype = c.IntArg(0);
        if (idtype is P_PID or P_PGID)
        {
            int id = c.IntArg(1);
            if (id <= 0) throw new SyscallError(Errno.EINVAL);
            int host = PidTranslation.ToHost(c, id) ?? PidTranslation.NoSuchPid; // the host checks the options first
            c.SetArg(1, (ulong)host);
        }
        if ((c.IntArg(3) & WNOHANG) == 0) c.Kernel.Vcpus.MayBlock(c.Task.Vcpu);
        c.AtExit(x =>
        {
            ulong info = x.Arg(2);
            if (x.Result != 0 || info == 0) return;
            // siginfo_t: si_signo @0, si_errno @4, si_code @8, si_pid @16
            int hostPid = GuestMemory.Read<int>(x.Tid, info + 16);
            if (hostPid == 0) return;
            int vpid = PidTranslation.ToVirtual(x, hostPid);
            GuestMemory.Write(x.Tid, info + 16, vpid);
            const int CLD_EXITED = 1, CLD_KILLED = 2, CLD_DUMPED = 3;
            int code = GuestMemory.Read<int>(x.Tid, info + 8);
            if ((x.IntArg(3) & WNOWAIT) == 0 && (x.IntArg(3) & WEXITED) != 0 && code is CLD_EXITED or CLD_KILLED or CLD_DUMPED)
                Reaped(x, vpid);
        });
    }

    /// <summary>A zombie was waited for.</summary>
    private static void Reaped(SyscallCall c, int vpid)
    {
        if (vpid > 0) c.Kernel.Reaped(vpid);
    }
}
