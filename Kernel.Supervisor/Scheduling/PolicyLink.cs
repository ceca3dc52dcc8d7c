using System.Diagnostics;
using UmlMicro.Contracts.Servers;
using UmlMicro.Supervisor.Servers;

namespace UmlMicro.Supervisor.Scheduling;

/// <summary>
/// The supervisor's end of Sched's run policy: a tick's facts go to Sched (sched/vcpu_tick) from a thread of its own,
/// so the tracer never waits for the round trip, and the decision is kept here until the tracer takes it
/// (<see cref="OnDecision"/> tells it one came: it rings the doorbell that wakes the tracer). One question at a time: a
/// tick while one is unanswered asks nothing.
/// <para>
/// The built-in hold: while Sched restarts, or an answer is over a second late (a server that hangs is restarted only
/// after the call timeout), the scheduler preempts by a plain round-robin itself, so the guest goes on; a server whose
/// contract has no sched/vcpu_tick (it answers "method not found") gets the built-in round-robin for the rest of the
/// run. An answer that is merely slow (a loaded host) is waited for: the policy, not the hold, decides. Any other error or a result that is not
/// a decision is the server's mistake: the run ends with it (<see cref="RunEnding.Fail"/>), as a checkpoint's does.
/// </para>
/// </summary>
internal sealed class PolicyLink : IDisposable
{
    private readonly Func<VcpuTick, VcpuDecision> _ask;
    private readonly Action<Exception> _fail;
    private readonly Func<bool> _restarting;
    private static readonly long LateAfter = Stopwatch.Frequency;
    private readonly Thread _thread;
    private readonly SemaphoreSlim _asked = new(0);
    private VcpuTick? _question;
    private VcpuDecision? _answer;
    private long _askedAt; // 0 when no question is open
    private volatile bool _unsupported, _closed;

    public PolicyLink(string name, Func<VcpuTick, VcpuDecision> ask, Func<bool> restarting, Action<Exception> fail)
    {
        Name = name;
        _ask = ask;
        _restarting = restarting;
        _fail = fail;
        _thread = new Thread(AnswerLoop) { IsBackground = true, Name = "sched policy" };
        _thread.Start();
    }

    /// <summary>The policy's name, as configured.</summary>
    public string Name { get; }

    /// <summary>Called on the policy's thread when a decision is ready to be taken.</summary>
    public Action? OnDecision { get; set; }

    /// <summary>Decisions Sched made, and ticks the built-in hold decided, for --stats.</summary>
    public long Decisions { get; private set; }
    public long Held { get; private set; }

    /// <summary>The scheduler decides by itself at this tick: Sched's answer is late, or Sched has no policy.</summary>
    public bool Holding
    {
        get
        {
            if (_unsupported) return true;
            long at = Volatile.Read(ref _askedAt);
            return at != 0 && (_restarting() || Stopwatch.GetTimestamp() - at > LateAfter);
        }
    }

    /// <summary>Sends the tick's facts unless a question is still open or Sched has no policy.</summary>
    public void Ask(VcpuTick tick)
    {
        if (_unsupported || _closed || Interlocked.CompareExchange(ref _askedAt, Stopwatch.GetTimestamp(), 0) != 0) return;
        Volatile.Write(ref _question, tick);
        _asked.Release();
    }

    /// <summary>The decision that came since the last call, if any (on the tracer thread).</summary>
    public VcpuDecision? Take()
    {
        var answer = Interlocked.Exchange(ref _answer, null);
        if (answer is not null) Decisions++;
        return answer;
    }

    public void NoteHeld() => Held++;

    private void AnswerLoop()
    {
        while (true)
        {
            _asked.Wait();
            if (_closed) return;
            var tick = Interlocked.Exchange(ref _question, null)!;
            try
            {
                Volatile.Write(ref _answer, Checked(_ask(tick)));
            }
            catch (ServerMistake e) when (e.Refused && e.MethodNotFound)
            {
                _unsupported = true;
            }
            catch (Exception e)
            {
                if (!_closed) _fail(e);
                return;
            }
            Volatile.Write(ref _askedAt, 0);
            OnDecision?.Invoke();
        }
    }

    private static VcpuDecision Checked(VcpuDecision? d) =>
        d is { Preempt: not null, Next: not null } ? d : throw new ServerMistake("sched", "sched/vcpu_tick", "answered something that is not a decision") { Refused = true };

    public void Dispose()
    {
        _closed = true;
        _asked.Release();
    }
}
