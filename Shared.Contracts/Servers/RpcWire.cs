using System;
using System.Buffers;
using System.Collections.Generic;
using System.Diagnostics.CodeAnalysis;
using System.IO;
using System.IO.Pipelines;
using System.Linq;
using System.Reflection;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;
using StreamJsonRpc;
using StreamJsonRpc.Protocol;

namespace UmlMicro.Contracts.Servers;

/// <summary>
/// The wire both ends agree on: JSON-RPC 2.0, one compact JSON message per line, System.Text.Json. A server in
/// another language only needs to read and write lines.
/// </summary>
public static class RpcWire
{
    /// <summary>
    /// The longest message either end accepts: 16 MiB. The largest legitimate ones are a process's memory map
    /// (mm/space_exec: about 100 bytes per area, a few hundred KiB for the largest programs; Linux's default
    /// vm.max_map_count of 65530 areas is about 7 MiB) and the process list (sched/processes: about 100 bytes per
    /// process and thread). A longer line is refused unread: nobody can make a peer allocate without bound.
    /// </summary>
    public const int MaxMessageBytes = 16 << 20;

    /// <summary>The client's end (the supervisor's): a message it cannot read breaks the connection, since the
    /// server that sent it cannot be trusted to answer the call it stands for.</summary>
    public static JsonRpc Create(Stream sending, Stream receiving) =>
        new(new LineHandler(sending, receiving, null));

    /// <summary>
    /// A server's end: a message that is not a well-formed request of <paramref name="contract"/> — cut off,
    /// not JSON, too deep, a batch, a bare value, an id that is neither a string nor an integer, a null for a
    /// parameter that must have a value, a line over <see cref="MaxMessageBytes"/> — is answered with a JSON-RPC
    /// error and none of it runs; the server goes on with the next line.
    /// </summary>
    public static JsonRpc CreateServer(Stream sending, Stream receiving, string name, RpcTargetMetadata contract) =>
        new(new LineHandler(sending, receiving, new RequestCheck(contract, name)));

    /// <summary>Line framing with a length cap; for a server, each line is checked before StreamJsonRpc sees it.
    /// Lines are read by a <see cref="ReaderThread"/> of their own.</summary>
    private sealed class LineHandler(Stream sending, Stream receiving, RequestCheck? check)
        : NewLineDelimitedMessageHandler(PipeWriter.Create(sending), ReaderThread.Start(receiving), NewFormatter(check is not null))
    {
        // The constructor is marked as needing dynamic code because its default options build serializers by
        // reflection; these options never do: every type comes from ContractJson, generated at compile time, as
        // StreamJsonRpc's NativeAOT guide prescribes (the formatter adds its own generated metadata for its types).
        [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = "Serializers come from ContractJson, a JsonSerializerContext.")]
        [UnconditionalSuppressMessage("AOT", "IL3050", Justification = "Serializers come from ContractJson, a JsonSerializerContext.")]
        private static SystemTextJsonFormatter NewFormatter(bool server) => new()
        {
            JsonSerializerOptions = new JsonSerializerOptions
            {
                TypeInfoResolver = ContractJson.Default,
                // A DTO with a member missing is refused before dispatch rather than run with a default in its place.
                RespectRequiredConstructorParameters = server,
            },
        };

        protected override async ValueTask<JsonRpcMessage?> ReadCoreAsync(CancellationToken cancellationToken)
        {
            while (true)
            {
                var line = await ReadLineAsync(cancellationToken).ConfigureAwait(false);
                if (line.Bytes is null && !line.TooLong)
                    return null; // end of input; a last line without its newline is cut off and never runs
                string? refusal;
                RequestId id = RequestId.Null;
                if (line.TooLong)
                    refusal = $"message longer than {MaxMessageBytes} bytes";
                else if (check is null)
                    return Formatter.Deserialize(new ReadOnlySequence<byte>(line.Bytes!), Formatter.Encoding);
                else
                    refusal = check.Problem(line.Bytes!, out id);

                if (refusal is null)
                {
                    try
                    {
                        return Formatter.Deserialize(new ReadOnlySequence<byte>(line.Bytes!), Formatter.Encoding);
                    }
                    catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException or NotSupportedException)
                    {
                        refusal = e.Message;
                    }
                }
                if (check is null)
                    throw new InvalidDataException($"JSON-RPC peer sent a bad message: {refusal}");
                await check.Refuse(this, id, refusal, cancellationToken).ConfigureAwait(false);
            }
        }

        private readonly record struct Line(byte[]? Bytes, bool TooLong);

        /// <summary>The next line without its newline, copied out of the pipe; a line over the cap is skipped as it
        /// arrives, never held whole.</summary>
        private async ValueTask<Line> ReadLineAsync(CancellationToken cancellationToken)
        {
            var reader = Reader ?? throw new InvalidOperationException("the handler was made without a reader");
            bool skipping = false;
            while (true)
            {
                var result = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
                var buffer = result.Buffer;
                if (buffer.PositionOf((byte)'\n') is { } end)
                {
                    var content = buffer.Slice(0, end);
                    bool tooLong = skipping || content.Length > MaxMessageBytes;
                    byte[]? bytes = tooLong ? null : TrimCarriageReturn(content.ToArray());
                    reader.AdvanceTo(buffer.GetPosition(1, end));
                    if (!tooLong && bytes!.Length == 0) continue; // an empty line is no message
                    return new Line(bytes, tooLong);
                }
                if (skipping || buffer.Length > MaxMessageBytes)
                {
                    skipping = true;
                    reader.AdvanceTo(buffer.End);
                }
                else
                {
                    reader.AdvanceTo(buffer.Start, buffer.End);
                }
                if (result.IsCompleted || result.IsCanceled)
                    return new Line(null, false);
            }
        }

        private static byte[] TrimCarriageReturn(byte[] line) =>
            line.Length > 0 && line[^1] == (byte)'\r' ? line[..^1] : line;
    }

    /// <summary>What a server checks in a line before StreamJsonRpc may act on it.</summary>
    private sealed class RequestCheck
    {
        private readonly Dictionary<string, ParameterInfo[]> methods = new(StringComparer.Ordinal);
        private readonly string name;

        public RequestCheck(RpcTargetMetadata contract, string name)
        {
            this.name = name;
            var nullability = new NullabilityInfoContext();
            foreach (var method in contract.Methods.Values.Concat(contract.AliasedMethods.Values).SelectMany(m => m))
            {
                if (method.Attribute?.Name is not { } wireName) continue;
                methods[wireName] = method.MethodInfo.GetParameters()
                    .Where(p => p.ParameterType != typeof(CancellationToken))
                    .Where(p => !p.ParameterType.IsValueType && nullability.Create(p).ReadState == NullabilityState.NotNull)
                    .ToArray();
            }
        }

        /// <summary>Null when the line may go to StreamJsonRpc; otherwise why not, and the request's id if it has a usable one.</summary>
        public string? Problem(byte[] line, out RequestId id)
        {
            id = RequestId.Null;
            JsonDocument document;
            try
            {
                document = JsonDocument.Parse(line); // depth is capped at 64: deep nesting is an error, not a deep recursion
            }
            catch (JsonException e)
            {
                return $"not JSON: {e.Message}";
            }
            using (document)
            {
                var root = document.RootElement;
                if (root.ValueKind != JsonValueKind.Object)
                    return root.ValueKind == JsonValueKind.Array ? "batch requests are not supported" : "a message must be a JSON object";
                if (!root.TryGetProperty("id", out var idElement))
                    id = RequestId.NotSpecified;
                else
                {
                    switch (idElement.ValueKind)
                    {
                        case JsonValueKind.String: id = new RequestId(idElement.GetString()); break;
                        case JsonValueKind.Number when idElement.TryGetInt64(out long n): id = new RequestId(n); break;
                        case JsonValueKind.Null: break;
                        default: return "an id must be a string or an integer";
                    }
                }
                if (!root.TryGetProperty("method", out var method) || method.ValueKind != JsonValueKind.String)
                    return "not a request: no method name";
                if (root.TryGetProperty("jsonrpc", out var version) && !(version.ValueKind == JsonValueKind.String && version.GetString() == "2.0"))
                    return "the jsonrpc version must be \"2.0\"";
                if (!root.TryGetProperty("params", out var parameters) || parameters.ValueKind == JsonValueKind.Null)
                    return null; // a method without parameters, or StreamJsonRpc says which are missing
                if (parameters.ValueKind is not (JsonValueKind.Array or JsonValueKind.Object))
                    return "params must be an array or an object";
                if (!methods.TryGetValue(method.GetString()!, out var required))
                    return null; // StreamJsonRpc answers an unknown method itself
                foreach (var p in required)
                {
                    var value = parameters.ValueKind == JsonValueKind.Array
                        ? (p.Position < parameters.GetArrayLength() ? parameters[p.Position] : default)
                        : (parameters.TryGetProperty(p.Name!, out var named) ? named : default);
                    if (value.ValueKind == JsonValueKind.Null)
                        return $"parameter '{p.Name}' must not be null";
                }
                return null;
            }
        }

        public async Task Refuse(MessageHandlerBase handler, RequestId id, string problem, CancellationToken cancellationToken)
        {
            // Silent on the wire for a notification (no id), but never silent altogether: the supervisor that sent
            // a message its own server refuses has a bug, and stderr is where its user sees it.
            await Console.Error.WriteLineAsync($"{name}: refused a message: {problem}").ConfigureAwait(false);
            if (id.IsEmpty)
                return; // a notification is never answered, not even with an error (JSON-RPC 2.0, section 4.1)
            var error = new JsonRpcError
            {
                RequestId = id,
                Error = new JsonRpcError.ErrorDetail
                {
                    Code = problem.StartsWith("not JSON", StringComparison.Ordinal) ? JsonRpcErrorCode.ParseError
                        : problem.StartsWith("parameter", StringComparison.Ordinal) || problem.StartsWith("params", StringComparison.Ordinal) ? JsonRpcErrorCode.InvalidParams
                        : JsonRpcErrorCode.InvalidRequest,
                    Message = problem,
                },
            };
            await handler.WriteAsync(error, cancellationToken).ConfigureAwait(false);
        }
    }
}

/// <summary>
/// What arrives on a stream, read by a thread of its own with plain blocking reads and handed on at once: the message
/// that wakes it is parsed (and, in a server, handled: <see cref="InlineSynchronizationContext"/>) on that same thread,
/// the pipe's reader running inline. The runtime's asynchronous pipe reads wake a poller thread and then a pool thread
/// for every message, and each hop between threads is a wake-up that a VM pays dearly for (bench/rpcping, on a loaded
/// 2-core VM: a bare request's mean 250-320 µs before, 180-200 µs with both ends and the server's dispatch so).
/// </summary>
internal static class ReaderThread
{
    private const int ReadSize = 64 * 1024;

    public static PipeReader Start(Stream stream)
    {
        // The reader stops reading once a longest message and a read more wait unconsumed: a peer that writes faster
        // than its lines are handled fills its pipe, not this process's memory.
        var pipe = new Pipe(new PipeOptions(readerScheduler: PipeScheduler.Inline, writerScheduler: PipeScheduler.Inline,
            pauseWriterThreshold: RpcWire.MaxMessageBytes + ReadSize, resumeWriterThreshold: RpcWire.MaxMessageBytes / 2,
            useSynchronizationContext: false));
        var thread = new Thread(() =>
        {
            try
            {
                while (true)
                {
                    int n = stream.Read(pipe.Writer.GetMemory(ReadSize).Span);
                    if (n == 0) break;
                    pipe.Writer.Advance(n);
                    var flush = pipe.Writer.FlushAsync(); // completes at once unless the reader is a whole message behind
                    if ((flush.IsCompleted ? flush.Result : flush.AsTask().GetAwaiter().GetResult()).IsCompleted) break;
                }
                pipe.Writer.Complete();
            }
            catch (Exception e)
            {
                pipe.Writer.Complete(e);
            }
        }) { IsBackground = true, Name = "rpc reader" };
        thread.Start();
        return pipe.Reader;
    }
}
