using System.Diagnostics;
using System.Runtime.ExceptionServices;
using StreamJsonRpc;
using UmlMicro.Contracts.Servers;
using UmlMicro.Contracts.Syscalls;
using UmlMicro.Supervisor.Observability;

namespace UmlMicro.Supervisor.Servers;

/// <summary>The command that starts a server process: "PROGRAM [ARGS...]", split on spaces; "{bin}" is the supervisor's folder.</summary>
public sealed record ServerCommand(string Command);

/// <summary>A server process could not be started or did not answer as its contract says.</summary>
internal sealed class ServerFailure(string message) : Exception(message);

/// <summary>How to start one server and hold it to its contract: the command, the contract it must speak, and the
/// deadlines for its handshake and for any answer (a server that misses one is taken for hung), and the run's end
/// as asked for from outside the guest, which every wait for the server heeds.</summary>
internal sealed record ServerLaunch(ServerCommand Command, string BinDir, string Contract, int Version, TimeSpan HandshakeTimeout, TimeSpan CallTimeout,
    RunEnding? Ending = null);

/// <summary>
/// The supervisor's end of one server: the process, its JSON-RPC connection and a typed proxy. Calls are
/// synchronous on the calling thread (the tracer, or a syscall worker serving a call off it), which measured a much
/// better p99 than awaiting; callers take turns.
/// <para>
/// It is also the server's reincarnation service. A server that died (its pipe broke, it exited, it was killed)
/// or hung (missed the answer deadline) is killed if need be and started again from the same command, handshaken,
/// and given back its state: the <see cref="ReplayLog"/> resends what it had been told. The request that was cut
/// off is then sent again; one that is not safe to apply twice carries a request id the server journals. The
/// guest, stopped in its syscall meanwhile, sees only a delay.
/// </para>
/// </summary>
internal sealed class ServerLink<T> : IDisposable where T : class, IKernelServer
{
    private static readonly IReadOnlyDictionary<string, ContractMethod> Methods = ContractForwarder<T>.Methods;

    private readonly ServerLaunch? _launch;
    private readonly RestartBudget? _budget;
    private readonly KernelStats _stats;
    private readonly ReplayLog _log = new();
    private readonly ContractForwarder<T> _forwarder;
    private readonly RunEnding _ending;
    private ServerProcess? _process;
    private volatile JsonRpc? _rpc;
    private long _nextRequestId;
    private bool _keepsCheckpoints = true;

    /// <summary>How long the replay history may grow before the server is asked for a checkpoint that stands for it.</summary>
    public const int CheckpointEvery = 4096;

    // One message at a time: the replay log, the forwarder's record of the last call and a restart in progress
    // belong to the one sender. (The server itself handles its messages one at a time, in order, anyway.)
    private readonly Lock _gate = new();

    // Set from the connection's own threads when it breaks; acted on by the next message the link sends.
    private volatile string? _lost;

    // Set with _lost when what broke the connection was a line from the server that is not JSON-RPC.
    private volatile string? _garbled;

    public Server Id { get; }
    public string Name { get; }

    /// <summary>The contract, as handlers call it (through <see cref="Call{TResult}"/>): always the live server.</summary>
    public T Proxy { get; }

    /// <summary>How many times this server was started again.</summary>
    public int Restarts { get; private set; }

    /// <summary>
    /// How many messages that may change the server's state were sent (posts, and requests the replay log keeps):
    /// an answer to a query holds while this has not moved since it was asked, since only the supervisor's messages
    /// change a server's state.
    /// </summary>
    public long Changes => Interlocked.Read(ref _changes);

    private long _changes;

    private ServerLink(Server id, string name, T target, KernelStats stats, ServerLaunch? launch, RestartBudget? budget)
    {
        Id = id;
        Name = name;
        _stats = stats;
        _launch = launch;
        _budget = budget;
        _ending = launch?.Ending ?? new RunEnding();
        (Proxy, _forwarder) = ContractForwarder<T>.Create(target);
    }

    /// <summary>A link to a server object in this process (unit tests hand in a mock of the contract); never restarted.</summary>
    public static ServerLink<T> InProcess(Server id, string name, T proxy, KernelStats stats) => new(id, name, proxy, stats, null, null);

    /// <summary>Starts the server process; <see cref="HandshakeAsync"/> must follow before any other call.</summary>
    public static ServerLink<T> Start(Server id, string name, ServerLaunch launch, KernelStats stats, RestartBudget budget)
    {
        var link = new ServerLink<T>(id, name, null!, stats, launch, budget);
        // Only the process here: its connection is made by the handshake, so every server is already starting up
        // while the first connection pays for setting up JSON-RPC (most of a cold start's time before the guest).
        link._starting = link.SpawnProcess();
        return link;
    }

    /// <summary>Started by <see cref="Start"/>, not yet connected.</summary>
    private ServerProcess? _starting;

    /// <summary>A started server process and its connection, live or standing by.</summary>
    private sealed record Connection(ServerProcess Process, JsonRpc Rpc, T Proxy);

    private static readonly Dictionary<string, string> NoDiagnostics = new() { ["DOTNET_EnableDiagnostics"] = "0" };

    private Connection Spawn() => Connect(SpawnProcess());

    private ServerProcess SpawnProcess()
    {
        var launch = _launch!;
        var parts = launch.Command.Command.Replace("{bin}", launch.BinDir.TrimEnd('/'))
            .Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (parts.Length == 0) throw new ServerFailure($"{Name} server: empty command");
        // No debugger pipes or diagnostics socket in /tmp: a server killed with SIGKILL would leave them there, and
        // every restart would add to a directory the guest lists.
        var process = ServerProcess.Start(parts, NoDiagnostics, out int errno)
            ?? throw new ServerFailure($"{Name} server: cannot start '{parts[0]}': {new System.ComponentModel.Win32Exception(errno).Message}");
        return process;
    }

    private Connection Connect(ServerProcess process)
    {
        var rpc = RpcWire.Create(process.Input, process.Output);
        rpc.Disconnected += (_, e) =>
        {
            if (!ReferenceEquals(_rpc, rpc)) return;
            // A line that is not JSON-RPC is the server's mistake, not a crash: a restarted one would say it again.
            if (e.Exception is { } bad and not (IOException or ObjectDisposedException or OperationCanceledException)) _garbled ??= bad.Message;
            _lost ??= $"lost its connection ({e.Reason})";
        };
        var proxy = AttachProxy(rpc);
        rpc.StartListening();
        return new Connection(process, rpc, proxy);
    }

    /// <summary>
    /// The contract's proxy on <paramref name="rpc"/>: the one StreamJsonRpc's source generator made at compile time for
    /// the [JsonRpcContract] interface (EnableStreamJsonRpcInterceptors: the calls must name the interface), not one
    /// emitted at run time, which took a cold supervisor 100 ms or more.
    /// </summary>
    private static T AttachProxy(JsonRpc rpc) => (T)(object)(typeof(T) == typeof(IVfsServer) ? rpc.Attach<IVfsServer>()
        : typeof(T) == typeof(IMmServer) ? rpc.Attach<IMmServer>()
        : typeof(T) == typeof(ISchedServer) ? rpc.Attach<ISchedServer>()
        : throw new ArgumentException($"no proxy for {typeof(T)}"));

    /// <summary>Makes <paramref name="c"/> the live server.</summary>
    private void Attach(Connection c)
    {
        _process = c.Process;
        _forwarder.Target = c.Proxy;
        _rpc = c.Rpc;
        _lost = c.Process.HasExited ? "exited while standing by" : null;
        _garbled = null;
    }

    /// <summary>Checks that the process is the server it claims to be, speaking the contract's version.</summary>
    public Task HandshakeAsync() => System.Threading.Tasks.Task.Factory.StartNew(() =>
    {
        // A thread of its own: three cold connections at once would otherwise wait for the thread pool to grow.
        if (Interlocked.Exchange(ref _starting, null) is { } process) Attach(Connect(process));
        return Handshake(_forwarder.Target);
    }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();

    private Task Handshake(T server) => System.Threading.Tasks.Task.Run(async () =>
    {
        var launch = _launch!;
        ServerHello hello;
        try
        {
            hello = await server.HelloAsync().WaitAsync(launch.HandshakeTimeout);
        }
        catch (TimeoutException)
        {
            throw new ServerFailure($"{Name} server: hello: no answer within {launch.HandshakeTimeout.TotalSeconds:0.#} s");
        }
        catch (Exception e) when (e is RemoteInvocationException or ConnectionLostException or ObjectDisposedException)
        {
            throw new ServerFailure($"{Name} server: hello: {e.Message}");
        }
        if (hello.Name != launch.Contract || hello.ContractVersion != launch.Version)
            throw new ServerFailure($"{Name} server: speaks '{hello.Name}' v{hello.ContractVersion}, expected '{launch.Contract}' v{launch.Version}");
    });

    /// <summary>
    /// A successor started and handshaken in the background after a server died once (a server that died may die
    /// again): the next restart then costs the replay, not a process start. Spawned off the tracer thread, whose
    /// waitpid(-1, __WNOTHREAD) would otherwise reap it under the runtime that started it.
    /// </summary>
    private Task<Connection>? _standby;

    private void StartStandby() => _standby = System.Threading.Tasks.Task.Run(async () =>
    {
        var c = Spawn();
        try
        {
            await Handshake(c.Proxy);
            return c;
        }
        catch
        {
            Discard(c);
            throw;
        }
    });

    /// <summary>The standby successor, handshaken (waiting for it if it is still starting), or a new one.</summary>
    private Connection Successor()
    {
        var standby = _standby;
        _standby = null;
        if (standby is not null)
        {
            try
            {
                var c = Started(standby);
                if (!c.Process.HasExited) return c;
                Discard(c);
            }
            catch (Exception e) when (e is ServerFailure || LostBy(Unwrap(e)) is not null)
            {
                // It did not come up: start one the ordinary way.
            }
        }
        var fresh = Started(System.Threading.Tasks.Task.Run(Spawn));
        try
        {
            Started(Handshake(fresh.Proxy));
        }
        catch
        {
            Discard(fresh);
            throw;
        }
        return fresh;
    }

    /// <summary>What a successor's start gave (each step has a deadline of its own), waited for as the run's end allows.</summary>
    private TResult Started<TResult>(Task<TResult> step)
    {
        Started((Task)step);
        return step.GetAwaiter().GetResult();
    }

    private void Started(Task step)
    {
        _ending.Wait(step, Timeout.InfiniteTimeSpan, Name, "hello");
        step.GetAwaiter().GetResult();
    }

    private static void Discard(Connection c) => Discard(c.Process, c.Rpc);

    /// <summary>Kills the process if it still runs, and lets go of it and its connection.</summary>
    private static void Discard(ServerProcess process, JsonRpc rpc)
    {
        process.Dispose();
        rpc.Dispose();
    }

    /// <summary>A fresh id for a request that must not be applied twice (see <see cref="RestoreKind.Journal"/>).</summary>
    public long NextRequestId() => Interlocked.Increment(ref _nextRequestId);

    /// <summary>
    /// A state change the server must apply but need not answer (a task exited, a mapping was made): a JSON-RPC
    /// notification of contract method <paramref name="method"/> (its C# name), sent in order and never waited
    /// for. The server handles messages one at a time, in order, so any later request sees it applied. A dead
    /// server gets it when it is started again.
    /// </summary>
    /// <para>
    /// Posting costs the caller (the tracer, at a guest's stop) only a place in the outbox, under a lock of its own:
    /// never a wait for a message being written or a checkpoint being taken. The post sender writes it out, and any
    /// request to this server writes what waits first, so the order is kept. A post joins the replay log as it goes
    /// on the wire (or when a restart hands the outbox to the successor), so the log's order is the wire's.
    /// </para>
    public void Post(string method, params object?[] args)
    {
        var m = Methods[method];
        // The contract says how each method travels (docs/contract): a request posted would be a silent lie to the server.
        if (!m.Notification) throw new InvalidOperationException($"{m.Wire} is a request, not a notification: Call it");
        Interlocked.Increment(ref _changes);
        if (_launch is null)
        {
            lock (_gate)
            {
                _log.Posted(m, args);
                m.Invoke(Proxy, args).GetAwaiter().GetResult();
                if (_log.Count >= CheckpointEvery) Checkpoint();
            }
            return;
        }
        bool first;
        lock (_outboxGate)
        {
            first = _outbox.Count == 0; // later ones go with it: the sender empties the whole outbox
            _outbox.Add((m, args));
            _sender ??= StartSender();
        }
        if (first) _posted.Set();
    }

    private readonly Lock _outboxGate = new();
    private List<(ContractMethod Method, object?[] Args)> _outbox = new(), _sending = new();
    // Posts are off the guest's path: the sender sleeps until one comes, without spinning first, so that it never
    // takes a CPU from the tracer or the guest (on one CPU, or a busy host, a spinning thread would).
    private readonly ManualResetEventSlim _posted = new(false, spinCount: 0);
    private Thread? _sender;
    private volatile bool _closing;

    private Thread StartSender()
    {
        var thread = new Thread(() =>
        {
            while (true)
            {
                _posted.Wait();
                _posted.Reset(); // before the outbox is taken: a post that finds it empty afterwards sets it again
                if (_closing) return;
                lock (_gate)
                {
                    if (_closing) return;
                    SendOutboxLocked();
                    if (_log.Count >= CheckpointEvery) CheckpointOffTracer();
                }
            }
        }) { IsBackground = true, Name = $"{Name} posts" };
        thread.Start();
        return thread;
    }

    /// <summary>
    /// The post sender's checkpoint. Asking may restart the server, and that may fail (a replay answered differently,
    /// the restart budget spent): no guest waits here to hear it, so the run is ended of it (<see cref="RunEnding.Fail"/>).
    /// </summary>
    private void CheckpointOffTracer()
    {
        try
        {
            Checkpoint();
        }
        catch (Exception e)
        {
            _ending.Fail(e);
        }
    }

    /// <summary>Writes out every post that waits, in order (the caller holds the send gate).</summary>
    private void SendOutboxLocked()
    {
        try
        {
            foreach (var (m, args) in TakeOutbox())
            {
                _log.Posted(m, args);
                Notify(m, args);
            }
        }
        finally
        {
            _sending.Clear();
        }
    }

    /// <summary>The posts that wait, taken out of the outbox (which posters go on filling meanwhile).</summary>
    private List<(ContractMethod Method, object?[] Args)> TakeOutbox()
    {
        lock (_outboxGate)
        {
            (_sending, _outbox) = (_outbox, _sending);
            return _sending;
        }
    }

    private void Notify(ContractMethod m, object?[] args)
    {
        if (_lost is not null || _rpc is not { } rpc) return;
        try
        {
            var sent = rpc.NotifyAsync(m.Wire, args);
            if (!sent.IsCompleted) sent.ContinueWith(t => NoteLost(rpc, t.Exception), TaskContinuationOptions.OnlyOnFaulted);
            else if (sent.IsFaulted) NoteLost(rpc, sent.Exception);
        }
        catch (Exception e) when (LostBy(e) is not null)
        {
            NoteLost(rpc, e);
        }
    }

    /// <summary>A message could not be sent on <paramref name="rpc"/>: that server is lost (unless it was already replaced).</summary>
    private void NoteLost(JsonRpc rpc, Exception? e)
    {
        if (ReferenceEquals(_rpc, rpc)) _lost ??= e is null ? "lost its connection" : LostBy(e.GetBaseException()) ?? e.GetBaseException().Message;
    }

    /// <summary>A request that waits for its answer, timed for --stats.</summary>
    public TResult Call<TResult>(Func<T, Task<TResult>> request) => Send(request, static t => ((Task<TResult>)t).Result);

    public void Call(Func<T, Task> request) => Send<object?>(request, static _ => null);

    private TResult Send<TResult>(Func<T, Task> request, Func<Task, TResult> answer)
    {
        lock (_gate) return SendLocked(request, answer);
    }

    private TResult SendLocked<TResult>(Func<T, Task> request, Func<Task, TResult> answer)
    {
        long t0 = Stopwatch.GetTimestamp();
        bool cutOff = false, timedOut = false;
        while (true)
        {
            if (_lost is { } why) Reincarnate(why, cutOff ? t0 : Stopwatch.GetTimestamp(), cutOff);
            SendOutboxLocked();
            Task pending;
            try
            {
                pending = request(Proxy);
            }
            catch (Exception e) when (_launch is not null && LostBy(Unwrap(e)) is { } lost)
            {
                _lost ??= lost;
                cutOff = true;
                continue;
            }
            var m = _forwarder.LastMethod!;
            if (m.Notification) throw new InvalidOperationException($"{m.Wire} is a notification ([Notification]): Post it");
            if (m.Restore is not null) Interlocked.Increment(ref _changes);
            if (!_ending.Wait(pending, _launch?.CallTimeout ?? Timeout.InfiniteTimeSpan, Name, m.Wire))
            {
                // A hung server is restarted and asked again; a fresh one that does not answer either never will.
                double s = _launch!.CallTimeout.TotalSeconds;
                if (timedOut) throw new ServerMistake(Name, m.Wire, $"no answer within {s:0.#} s, from a restarted server either");
                _lost ??= $"did not answer {m.Wire} within {s:0.#} s";
                cutOff = timedOut = true;
                continue;
            }
            if (pending.IsFaulted)
            {
                var e = Unwrap(pending.Exception!);
                // A server object in this process (a unit test's mock): its own exception, as a direct call.
                if (_launch is null) ExceptionDispatchInfo.Throw(e);
                if (LostBy(e) is { } lost)
                {
                    if (Garbled() is { } bad) throw new ServerMistake(Name, m.Wire, $"sent a line that is not JSON-RPC ({bad})");
                    _lost ??= lost;
                    cutOff = true;
                    continue;
                }
                throw ServerMistake.Answering(Name, m.Wire, e);
            }
            var result = answer(pending);
            // A null where the contract has a value (a grant, a resolution) would fail later, far from its cause.
            if (result is null && !m.AnswersNull && _launch is not null)
                throw new ServerMistake(Name, m.Wire, "answered null, which is not its result") { Refused = true };
            _log.Answered(m, _forwarder.LastArgs ?? [], result);
            _stats.RecordServer(Id, Stopwatch.GetTimestamp() - t0);
            if (_log.Count >= CheckpointEvery) Checkpoint();
            return result;
        }
    }

    /// <summary>
    /// Why the connection broke when it was a line from the server that is not JSON-RPC, or null. The link learns it
    /// from the connection's own thread, which may still be telling it when the call it cut off has failed.
    /// </summary>
    private string? Garbled()
    {
        if (_garbled is null && _rpc is { } rpc) rpc.Completion.ContinueWith(static _ => { }).Wait(TimeSpan.FromMilliseconds(100));
        return _garbled;
    }

    /// <summary>
    /// Asks the server for a checkpoint (a query: it is not kept itself) to cut the replay history short. A server
    /// that refuses (an error answer such as "method not found", or something that is not a checkpoint) keeps none,
    /// as one that answers null: the whole history is kept, and a restart replays it from the start.
    /// </summary>
    private void Checkpoint()
    {
        if (!_keepsCheckpoints || _launch is null) return;
        _keepsCheckpoints = false; // also: no checkpoint from inside this one
        string? state;
        try
        {
            state = Call(s => s.CheckpointAsync());
        }
        catch (ServerMistake e) when (e.Refused)
        {
            return;
        }
        if (state is null) return;
        _log.Checkpointed(state);
        _keepsCheckpoints = true;
    }

    private static Exception Unwrap(Exception e) => e is AggregateException { InnerException: { } inner } ? Unwrap(inner) : e;

    /// <summary>Why an exception means the server is gone (its connection broke), or null when it is something else:
    /// an error the server answered (a protocol violation) is the kernel's bug, not a crash, and is not retried.</summary>
    private static string? LostBy(Exception e) => e switch
    {
        ConnectionLostException => "lost its connection",
        ObjectDisposedException or IOException => $"lost its connection ({e.Message})",
        _ => null,
    };

    /// <summary>
    /// Starts the server again and gives it back its state; the caller then sends its request again (the guest was
    /// held since <paramref name="heldSince"/>: the cut-off request's start, or now). Each attempt
    /// takes one restart from the budget, which ends the guest (<see cref="ServerCrashLoop"/>) when it is spent.
    /// </summary>
    private void Reincarnate(string why, long heldSince, bool cutOff)
    {
        if (_launch is null) throw new ServerFailure($"{Name} server {why}");
        Restarting = true;
        try
        {
            ReincarnateLocked(why, heldSince, cutOff);
        }
        finally
        {
            Restarting = false;
        }
    }

    /// <summary>A restart is under way: calls wait for it (read from any thread).</summary>
    public bool Restarting { get => Volatile.Read(ref _restarting); private set => Volatile.Write(ref _restarting, value); }
    private bool _restarting;

    private void ReincarnateLocked(string why, long heldSince, bool cutOff)
    {
        while (true)
        {
            _budget!.Take(Name, why);
            // What waits to be posted goes to the successor with the rest of the log.
            foreach (var (m, args) in TakeOutbox()) _log.Posted(m, args);
            _sending.Clear();
            Stop(kill: true);
            try
            {
                Attach(Successor());
                int resent = _log.SendTo(_rpc!, _forwarder.Target, Name, _launch!.CallTimeout, _ending);
                Restarts++;
                StartStandby();
                _budget.Report(new ServerRestart(Name, DateTime.UtcNow, why, Stopwatch.GetElapsedTime(heldSince), _log.Count, resent + (cutOff ? 1 : 0)));
                return;
            }
            catch (Exception e) when (e is ServerFailure or TimeoutException || LostBy(Unwrap(e)) is not null)
            {
                // Died again while coming back up: that is one more restart, if the budget allows.
                why = $"failed while restarting ({Unwrap(e).Message})";
            }
        }
    }

    /// <summary>Ends the server process: a clean shutdown after every message before it, or a kill.</summary>
    private void Stop(bool kill)
    {
        var (process, rpc) = (_process, _rpc);
        _process = null;
        _rpc = null;
        if (process is null || rpc is null) return;
        try
        {
            if (!kill && !process.HasExited)
            {
                // Notifications go out in order: once shutdown is on the wire, every state change before it is
                // too. Closing the pipe earlier would cut a message in half under the server's reader.
                rpc.NotifyAsync("shutdown").Wait(TimeSpan.FromSeconds(2));
                process.CloseInput();
                process.WaitForExit(TimeSpan.FromSeconds(2));
            }
        }
        catch (Exception e) when (e is InvalidOperationException or IOException or ObjectDisposedException or AggregateException)
        {
            // Already gone: nothing is left running either way.
        }
        finally
        {
            Discard(process, rpc);
        }
    }

    public void Dispose()
    {
        lock (_gate) DisposeLocked();
    }

    private void DisposeLocked()
    {
        Interlocked.Exchange(ref _starting, null)?.Dispose(); // never handshaken
        _closing = true;
        _posted.Set();
        SendOutboxLocked();
        // A change the server may not have read before it died (one it journals itself, such as a whiteout that
        // --keep-changes would keep) is delivered before the end: asking anything restarts the server if need be.
        if (_launch is not null && _log.Unanswered > 0 && _lost is not null)
        {
            try
            {
                Call(s => s.HelloAsync());
            }
            catch (Exception e) when (e is ServerFailure or ServerCrashLoop or ServerMistake or RunInterrupted)
            {
                // The run ends anyway: what the guest saw is what the server had been told.
            }
        }
        Stop(kill: false);
        if (Interlocked.Exchange(ref _standby, null) is { } standby)
        {
            try
            {
                Discard(standby.GetAwaiter().GetResult());
            }
            catch (Exception e) when (e is ServerFailure || LostBy(Unwrap(e)) is not null)
            {
                // It never came up, and was discarded then.
            }
        }
    }
}
