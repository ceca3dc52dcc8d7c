using UmlMicro.Contracts.Servers;
using System.Diagnostics;
using UmlMicro.Contracts.Linux;
using UmlMicro.Contracts.Syscalls;
using UmlMicro.Supervisor.Guest;
using UmlMicro.Supervisor.Ptrace;

namespace UmlMicro.Supervisor.Syscalls;

/// <summary>Decides a routed syscall at its entry stop.</summary>
internal delegate void EntryHandler(SyscallCall call);

/// <summary>Finishes a syscall the host ran, at its exit stop: translates or records the result.</summary>
internal delegate void ExitHandler(SyscallCall call);

/// <summary>Runs a syscall of the kernel's choosing inside a task stopped at a syscall entry (see TracerThread.Inject).</summary>
internal interface ISyscallInjector
{
    long Inject(GuestTask task, long nr, ReadOnlySpan<ulong> args);
}

/// <summary>A handler tried with <see cref="SyscallCall.GrantsOnly"/> needs a server.</summary>
internal sealed class ServerNeeded() : Exception("the call needs a server");

/// <summary>A guest's syscall failed in the kernel with an errno.</summary>
internal sealed class SyscallError(int errno) : Exception($"errno {errno}")
{
    public int Errno { get; } = errno;
}

/// <summary>
/// The syscall a task is in, from its entry stop to its exit stop. One instance per task, reused for
/// every call so the hot path does not allocate.
/// </summary>
internal sealed class SyscallCall
{
    private readonly ulong[] _args = new ulong[6];
    private UserRegs _regs;
    private bool _regsLoaded;

    public Kernel Kernel { get; private set; } = null!;
    public GuestTask Task { get; private set; } = null!;
    public SyscallInfo Info { get; private set; } = null!;

    /// <summary>The result the kernel decided itself (emulated or denied); null when the host runs the call.</summary>
    public long? Emulated { get; private set; }

    public bool ArgsChanged { get; private set; }
    public ExitHandler? Exit { get; private set; }

    /// <summary>At the exit stop: the result the guest will see.</summary>
    public long Result { get; set; }

    /// <summary>Set when execve succeeded between entry and exit: the registers belong to the new image.</summary>
    public bool Execed { get; set; }

    public long StartTimestamp { get; private set; }

    /// <summary>The server that took part, for the trace. Every handler sets it before it asks a server, which is
    /// where <see cref="GrantsOnly"/> stops it.</summary>
    public Server? ServerUsed
    {
        get => _serverUsed;
        set
        {
            if (GrantsOnly && value is not null) throw new ServerNeeded();
            _serverUsed = value;
        }
    }

    private Server? _serverUsed;

    /// <summary>The handler may answer only from what the supervisor keeps (a lease, a cached grant): it stops with
    /// <see cref="ServerNeeded"/>, having changed nothing, where it would ask a server.</summary>
    public bool GrantsOnly { get; set; }

    /// <summary>The VFS answered that this call makes a name (PathResolution.MakesName): until its exit stop, the name
    /// may or may not be there.</summary>
    public bool MakesName { get; set; }

    /// <summary>Free text for the trace, e.g. a rewritten path.</summary>
    public string? Note { get; set; }

    /// <summary>The arguments as decoded at entry for --trace (the memory they point to may be gone at exit).</summary>
    public object[]? TraceArgs { get; set; }

    /// <summary>The tracer that can make this task run a syscall of the kernel's choosing (null in unit tests).</summary>
    public ISyscallInjector? Injector { get; set; }

    public void Begin(Kernel kernel, GuestTask task, SyscallInfo info, ReadOnlySpan<ulong> args)
    {
        Kernel = kernel;
        Task = task;
        Info = info;
        args.CopyTo(_args);
        _regsLoaded = false;
        Emulated = null;
        ArgsChanged = false;
        Exit = null;
        Execed = false;
        Result = 0;
        ServerUsed = null;
        MakesName = false;
        Note = null;
        TraceArgs = null;
        StartTimestamp = Stopwatch.GetTimestamp();
    }

    public int Tid => Task.HostTid;

    /// <summary>Argument <paramref name="i"/> as the guest passed it.</summary>
    public ulong Arg(int i) => _args[i];
    public int IntArg(int i) => (int)_args[i];
    public long LongArg(int i) => (long)_args[i];

    /// <summary>
    /// The task's registers at this stop, read on first use: a call the kernel only passes on never needs them.
    /// Handlers change arguments through <see cref="SetArg"/>; the tracer writes them back.
    /// </summary>
    public ref UserRegs Regs
    {
        get
        {
            if (!_regsLoaded)
            {
                if (OffTracer) throw new InvalidOperationException("a call served off the tracer needs its registers read at the stop");
                if (!PtraceOps.GetRegs(Tid, out _regs)) throw new GuestFault(0); // the task died under us
                _regsLoaded = true;
            }
            return ref _regs;
        }
    }

    /// <summary>Reads the registers now (on the tracer thread), before the call is handed to a syscall worker.</summary>
    public void LoadRegs() => _ = Regs;

    /// <summary>A syscall worker is serving the call: only the tracer thread may make ptrace requests.</summary>
    public bool OffTracer { get; set; }

    /// <summary>A new stop of the same call: registers read at an earlier stop are stale.</summary>
    public void ForgetRegs() => _regsLoaded = false;

    /// <summary>Tests and the tracer hand in registers they already hold.</summary>
    public void UseRegs(in UserRegs regs)
    {
        _regs = regs;
        _regsLoaded = true;
    }

    public void Return(long value) => Emulated = value;
    public void Fail(int errno) => Emulated = -errno;

    /// <summary>Lets the host run the call with argument <paramref name="i"/> replaced; the guest's register is restored at exit.</summary>
    public void SetArg(int i, ulong value)
    {
        Regs.SetArg(i, value);
        ArgsChanged = true;
    }

    public void AtExit(ExitHandler handler) => Exit = handler;

    /// <summary>Restores the argument registers the guest set: the syscall ABI promises they survive the call.</summary>
    public void RestoreArgs(ref UserRegs regs)
    {
        for (int i = 0; i < 6; i++) regs.SetArg(i, _args[i]);
    }

    private const int ScratchSlot = 4096, ScratchSlots = 4;
    private const int MMAP = 9, PROT_RW = 3, MAP_PRIVATE_ANON = 0x22;

    /// <summary>
    /// Hands the host <paramref name="hostPath"/> instead of the string argument <paramref name="i"/> points to: the
    /// path is written into slot <paramref name="i"/> of the task's scratch area, so rename's two paths never
    /// collide. The guest's own string is never touched; its argument register is restored at exit.
    /// </summary>
    public void RewritePath(int i, string hostPath)
    {
        var bytes = PathBytes.EncodeZ(hostPath);
        if (bytes.Length > ScratchSlot) throw new SyscallError(Errno.ENAMETOOLONG);
        ulong slot = ScratchSlotAddress(i);
        GuestMemory.Write(Tid, slot, bytes);
        SetArg(i, slot);
        Note = hostPath;
    }

    /// <summary>Bytes the slots from <paramref name="first"/> to the last can hold together.</summary>
    public static int ScratchBytesFrom(int first) => (ScratchSlots - first) * ScratchSlot;

    /// <summary>
    /// The guest address of scratch slot <paramref name="i"/>: a private mapping the kernel makes inside the guest
    /// on first need (by syscall injection), one 4 KiB slot per argument, gone with the image at execve.
    /// </summary>
    public ulong ScratchSlotAddress(int i)
    {
        if (Task.Scratch == 0)
        {
            var injector = Injector ?? throw new InvalidOperationException("no tracer to inject the scratch mapping");
            long addr = injector.Inject(Task, MMAP, [0, ScratchSlot * ScratchSlots, PROT_RW, MAP_PRIVATE_ANON, ulong.MaxValue, 0]);
            if (addr < 0 && addr > -4096) throw new SyscallError(Errno.ENOMEM);
            Task.Scratch = (ulong)addr;
            // Recorded like the guest's own mappings, so the map stays exact; it commits 16 KiB without asking,
            // since the kernel's own working memory must not fail because the guest is near its limit.
            Kernel.Mm.Post(nameof(IMmServer.RecordAsync), new MmEvent(
                Task.Vpid, MmOp.Mmap, 0, ScratchSlot * ScratchSlots, 0, PROT_RW, MAP_PRIVATE_ANON, -1, 0, addr));
            // The host placed it, likely inside the window the guest's own mmap(NULL) calls are placed in.
            Kernel.Placement.Taken(Task.Vpid, (ulong)addr, ScratchSlot * ScratchSlots);
        }
        return Task.Scratch + (ulong)(i * ScratchSlot);
    }

    /// <summary>Reads argument <paramref name="i"/> as a path: EFAULT, ENOENT for "", ENAMETOOLONG past PATH_MAX.</summary>
    public string ReadPath(int i)
    {
        var bytes = GuestMemory.ReadCString(Tid, Arg(i), LinuxFlags.PATH_MAX) ?? throw new SyscallError(Errno.ENAMETOOLONG);
        return PathBytes.Decode(bytes);
    }
}
