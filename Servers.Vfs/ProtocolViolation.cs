using StreamJsonRpc;
using StreamJsonRpc.Protocol;

namespace UmlMicro.Servers.Vfs;

/// <summary>
/// A request that is wrong whatever the guest did (an unknown pid, a relative cwd): the supervisor's books
/// and ours disagree. It is answered with a JSON-RPC error (code -32000, not invalid-params: StreamJsonRpc
/// clients take -32602 for a missing method), which the supervisor treats as a protocol error, instead of an
/// errno that would be handed on to the guest.
/// </summary>
internal static class ProtocolViolation
{
    public static LocalRpcException Of(string message) =>
        new(message) { ErrorCode = (int)JsonRpcErrorCode.InvocationError };
}
