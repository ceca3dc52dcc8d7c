using StreamJsonRpc;
using StreamJsonRpc.Protocol;

namespace UmlMicro.Servers.Mm;

/// <summary>
/// A request that is wrong whatever the guest did (an unknown pid, an extent the host would have refused):
/// the supervisor's books and ours disagree. It is answered with a JSON-RPC invalid-params error, which the supervisor treats as a
/// protocol error, instead of an errno that would be handed on to the guest.
/// </summary>
internal static class ProtocolViolation
{
    public static LocalRpcException Of(string message) =>
        new(message) { ErrorCode = (int)JsonRpcErrorCode.InvocationError };
}
