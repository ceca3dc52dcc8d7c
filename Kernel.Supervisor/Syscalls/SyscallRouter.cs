using UmlMicro.Contracts.Syscalls;

namespace UmlMicro.Supervisor.Syscalls;

/// <summary>
/// The routing table in executable form: for every routed row of <see cref="SyscallTable"/> the entry
/// handler of its family. Built once; a routed row without a handler is a startup error, so the table
/// and the handlers cannot drift apart.
/// </summary>
internal sealed class SyscallRouter
{
    private readonly EntryHandler?[] _handlers = new EntryHandler?[SyscallTable.Capacity];
    private readonly bool[] _offTracer = new bool[SyscallTable.Capacity];

    public SyscallRouter()
    {
        var byName = new Dictionary<string, EntryHandler>();
        SysProcess.Register(byName);
        SysSignal.Register(byName);
        SysSched.Register(byName);
        var file = new Dictionary<string, EntryHandler>();
        SysFile.Register(file);
        foreach (var (name, handler) in file) byName.Add(name, handler);
        SysSocket.Register(byName);
        SysMmap.Register(byName);
        SysInfo.Register(byName);
        SysLimits.Register(byName);
        SysSeccomp.Register(byName);
        SysFdControl.Register(byName);
        SysCreds.Register(byName);

        foreach (var row in SyscallTable.All)
        {
            if (row.Disposition is not (Disposition.Emulate or Disposition.Rewrite)) continue;
            if (byName.TryGetValue(row.Name, out var h)) _handlers[row.Number] = h;
            else if (row.Owner == Server.Kernel && row.Args.Contains(ArgKind.Pid)) _handlers[row.Number] = PidTranslation.TranslateArgs; // pids in, the host does the rest
            else throw new InvalidOperationException($"routed syscall {row.Name} has no handler");
        }
        foreach (var name in SysFile.OnTracerOnly)
            if (!file.ContainsKey(name)) throw new InvalidOperationException($"{name} is kept on the tracer, but SysFile has no handler for it");
        foreach (var name in file.Keys.Except(SysFile.OnTracerOnly).Concat(SysProcess.OffTracer))
            _offTracer[SyscallTable.Find(name) is { IsRouted: true } row ? row.Number : throw new InvalidOperationException($"{name} is served off the tracer, but the table does not route it")] = true;
        foreach (var name in byName.Keys)
            if (SyscallTable.Find(name) is not { IsRouted: true }) throw new InvalidOperationException($"handler for {name}, which the table does not route");
    }

    public EntryHandler? Handler(int nr) => nr is >= 0 and < SyscallTable.Capacity ? _handlers[nr] : null;

    /// <summary>
    /// The handler of <paramref name="nr"/> needs nothing only the tracer thread may do (ptrace requests: injection,
    /// registers after the stop, vCPU changes) once its task has a scratch area, so a syscall worker may run it while
    /// the tracer serves other tasks (see TracerThread.Offload).
    /// </summary>
    public bool RunsOffTracer(int nr) => nr is >= 0 and < SyscallTable.Capacity && _offTracer[nr];
}
