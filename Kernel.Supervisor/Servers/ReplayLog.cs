using System.Diagnostics;
using System.Runtime.ExceptionServices;
using StreamJsonRpc;
using UmlMicro.Contracts.Servers;

namespace UmlMicro.Supervisor.Servers;

/// <summary>
/// What the supervisor keeps of the messages it sent one server, so that a restarted one can be brought back to
/// where the dead one was: every <see cref="RestoreKind.Replay"/> message in order (with the answer a request got,
/// which the restarted server must give again), and the <see cref="RestoreKind.Journal"/> messages sent since the
/// server last answered anything, which it may not have read before it died. The server handles messages one at a
/// time in order, so an answer means every message before it was applied.
/// <para>It grows with the guest's history (a few messages per process, one per memory call), until the server
/// gives a checkpoint of its state (see <see cref="IKernelServer.CheckpointAsync"/>): the history then starts there.</para>
/// </summary>
internal sealed class ReplayLog
{
    private readonly record struct Sent(ContractMethod Method, object?[] Args, bool Request, object? Answer);

    private readonly List<Sent> _replay = [];
    private readonly List<Sent> _unanswered = [];
    private string? _checkpoint;

    /// <summary>How many messages a restarted server would be sent again.</summary>
    public int Count => _replay.Count;

    /// <summary>The server's state now, which stands for everything it was sent so far: the history can go.</summary>
    public void Checkpointed(string state)
    {
        _checkpoint = state;
        _replay.Clear();
    }

    public int Unanswered => _unanswered.Count;

    /// <summary>A notification went out (or would have, had the server been alive).</summary>
    public void Posted(ContractMethod m, object?[] args)
    {
        if (m.Restore == RestoreKind.Replay) _replay.Add(new Sent(m, args, Request: false, null));
        else if (m.Restore == RestoreKind.Journal) _unanswered.Add(new Sent(m, args, Request: false, null));
    }

    /// <summary>A request was answered: it is kept if it must be replayed, and everything sent before it was read.</summary>
    public void Answered(ContractMethod m, object?[] args, object? answer)
    {
        if (m.Restore == RestoreKind.Replay) _replay.Add(new Sent(m, args, Request: true, answer));
        _unanswered.Clear();
    }

    /// <summary>
    /// Sends everything kept to a fresh server, as it was sent before (notifications as notifications, whose errors
    /// nobody hears, requests as requests) in one pipelined burst that the server still handles in order; then the
    /// journal messages that may have been lost. Returns how many of those were sent again. A replayed request
    /// answered differently than before (or with an error) means the server cannot rebuild its state that way: its
    /// mistake (<see cref="ServerMistake"/>), which ends the guest.
    /// </summary>
    public int SendTo<T>(JsonRpc rpc, T server, string name, TimeSpan timeout, RunEnding ending) where T : class, IKernelServer
    {
        if (_checkpoint is not null) Await(server.RestoreAsync(_checkpoint), KernelMethods.Restore, timeout, name, ending);
        var replies = new Task?[_replay.Count];
        for (int i = 0; i < replies.Length; i++)
            replies[i] = _replay[i].Request ? Invoke(server, _replay[i]) : Notify(rpc, _replay[i]);
        foreach (var sent in _unanswered) Notify(rpc, sent);
        // Answered in order: once hello is, everything before it was applied. A long history takes its time: the
        // deadline grows with it (a server that replays takes well under a millisecond a message).
        timeout += TimeSpan.FromMilliseconds(_replay.Count);
        Await(server.HelloAsync(), KernelMethods.Hello, timeout, name, ending);
        for (int i = 0; i < replies.Length; i++)
        {
            if (!_replay[i].Request) continue;
            var m = _replay[i].Method;
            Await(replies[i]!, m, timeout, name, ending);
            if (_replay[i].Answer is not { } before) continue;
            string now = m.Json(m.AnswerOf(replies[i]!)), then = m.Json(before);
            if (now != then)
                throw new ServerMistake(name, m.Wire, $"replayed after a restart, answered {Short(now)}, not {Short(then)} as before; its state cannot be rebuilt");
        }
        return _unanswered.Count;
    }

    private static Task Notify(JsonRpc rpc, Sent s) => rpc.NotifyAsync(s.Method.Wire, s.Args);

    private static Task Invoke<T>(T server, Sent s) where T : class => s.Method.Invoke(server, s.Args);

    /// <summary>An answer as the failure line shows it: the start of it.</summary>
    private static string Short(string json) => json.Length <= 80 ? json : json[..80] + "...";

    /// <summary>
    /// Waits for a replayed message's answer. Time running out, or the connection breaking, is one more failed restart
    /// (the caller starts the server again); an error answer is the server's mistake: it cannot take back its state.
    /// </summary>
    private static void Await(Task t, ContractMethod m, TimeSpan timeout, string name, RunEnding ending)
    {
        if (!ending.Wait(t, timeout, name, m.Wire)) throw new TimeoutException($"its state was not rebuilt within {timeout.TotalSeconds:0.#} s");
        if (t.Exception?.InnerException is not { } e) return;
        if (e is ConnectionLostException or ObjectDisposedException or IOException) ExceptionDispatchInfo.Throw(e);
        throw ServerMistake.Answering(name, m.Wire, e, " while its state was rebuilt");
    }
}
