using System;

namespace UmlMicro.Contracts.Servers;

/// <summary>
/// How a restarted server gets back what a contract method changed. The supervisor's reincarnation service reads
/// this from the contract: a method without it is a query (it changes nothing, so a crash loses nothing and a
/// retry is always safe).
/// </summary>
public enum RestoreKind
{
    /// <summary>
    /// The change lives only in the server's memory: the supervisor keeps every such message it sent and sends
    /// them again, in the same order, to a restarted server, which must then answer them exactly as before.
    /// </summary>
    Replay,

    /// <summary>
    /// The server keeps the change on disk itself (its journal) and reads it back when configured again: a restart
    /// does not resend it. A message the crash may have cut off is sent again, so applying it twice must be
    /// harmless or the message carries a request id the server journals with its answer.
    /// </summary>
    Journal,
}

[AttributeUsage(AttributeTargets.Method)]
public sealed class RestoreAttribute(RestoreKind kind) : Attribute
{
    public RestoreKind Kind { get; } = kind;
}
