using StreamJsonRpc;

namespace UmlMicro.Supervisor.Servers;

/// <summary>
/// A server answered what its contract does not allow — an error, something that is not the method's result, a line
/// that is not JSON-RPC, a replayed request answered differently than before — or a fresh server too left a request
/// unanswered. Restarting it would not help (it would do the same again), so the guest is ended (exit status 125)
/// with this one line, which names the server, the wire method and the problem.
/// </summary>
internal sealed class ServerMistake(string server, string wire, string problem) : Exception($"{server} server: {wire}: {OneLine(problem)}")
{
    /// <summary>The server answered the request, but not with its result: an error, or a value of another kind.</summary>
    public bool Refused { get; init; }

    /// <summary>The refusal was JSON-RPC's "method not found": the server's contract has no such method.</summary>
    public bool MethodNotFound { get; init; }

    /// <summary>The error message the server answered with, for a refusal that was an error.</summary>
    public string? ServerSaid { get; init; }

    /// <summary>A failed answer (<paramref name="e"/>, not a lost connection) to <paramref name="wire"/>, as a mistake.</summary>
    public static ServerMistake Answering(string server, string wire, Exception e, string when = "") => e switch
    {
        RemoteMethodNotFoundException m => new(server, wire, $"answered error {m.ErrorCode}{when}: {m.Message}") { Refused = true, MethodNotFound = true, ServerSaid = m.Message },
        RemoteInvocationException r => new(server, wire, $"answered error {r.ErrorCode}{when}: {r.Message}") { Refused = true, ServerSaid = r.Message },
        _ => new(server, wire, $"answered something that is not its result{when} ({e.Message})") { Refused = true },
    };

    /// <summary>What a server said, made one line of bounded length: it goes into the guest's last line on stderr.</summary>
    private static string OneLine(string text)
    {
        const int Longest = 300;
        var flat = string.Concat(text.Select(c => char.IsControl(c) ? ' ' : c));
        return flat.Length <= Longest ? flat : flat[..Longest] + "...";
    }
}

/// <summary>
/// A wait for a server was given up because the run is ending (<see cref="RunEnding"/>): a signal to the supervisor
/// or --timeout came while the kernel waited, or a server's mistake was found off the tracer thread.
/// </summary>
internal sealed class RunInterrupted(string message) : Exception(message);
