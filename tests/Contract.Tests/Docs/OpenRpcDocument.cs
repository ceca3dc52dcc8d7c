using System.Reflection;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Schema;
using UmlMicro.Contracts.Servers;

namespace UmlMicro.ContractTests.Docs;

/// <summary>
/// One server's contract as an OpenRPC 1.3 document (docs/contract/NAME.openrpc.json): every method with its wire
/// name, positional parameters and result as JSON Schema made from the JSON the wire really carries (ContractJson's
/// generated metadata), whether the supervisor sends it as a notification, and how a restarted server gets back what
/// it changed. Extensions start with "x-umlmicro-".
/// </summary>
public static class OpenRpcDocument
{
    private static readonly JsonSerializerOptions Wire = new(ContractJson.Default.Options)
    {
        // What a server's end enforces (RpcWire): a member without a default value must be present.
        RespectRequiredConstructorParameters = true,
        RespectNullableAnnotations = true,
    };

    private static readonly JsonSerializerOptions Indented = new()
    {
        WriteIndented = true,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, // the documents are read by people too: "'" stays "'"
    };

    public static string Render(ContractInfo contract, DocComments docs)
    {
        var document = new JsonObject
        {
            ["openrpc"] = "1.3.2",
            ["info"] = new JsonObject
            {
                ["title"] = $"UmlMicro {contract.Name} server",
                ["version"] = contract.Version.ToString(),
                ["description"] = docs.Of(contract.Interface) + "\n\nGenerated from Shared.Contracts by tests/Contract.Tests/Docs; do not edit. " +
                    "The rules a server must keep are in docs/contract/" + contract.Name + ".md, the wire in docs/contract/README.md.",
            },
            ["x-umlmicro-summary"] = docs.Of(contract.Interface),
            ["x-umlmicro-hello"] = new JsonObject { ["Name"] = contract.Name, ["ContractVersion"] = contract.Version },
            ["methods"] = new JsonArray([.. contract.Methods.Select(m => Method(m, docs))]),
            ["components"] = new JsonObject
            {
                ["schemas"] = new JsonObject(ContractTypes.Reachable(contract)
                    .Select(t => KeyValuePair.Create(t.Name, (JsonNode?)Schema(t, docs, root: true)))),
                ["errors"] = Errors(),
            },
        };
        return document.ToJsonString(Indented) + "\n";
    }

    private static JsonObject Method(MethodInfo m, DocComments docs)
    {
        var method = new JsonObject { ["name"] = ContractTypes.Wire(m) };
        if (docs.Of(m) is { Length: > 0 } text) method["description"] = text;
        method["paramStructure"] = "by-position";
        method["params"] = new JsonArray([.. m.GetParameters().Select(p => (JsonNode)new JsonObject
        {
            ["name"] = p.Name,
            ["required"] = true,
            ["schema"] = OrNull(Schema(p.ParameterType, docs, root: false), ContractTypes.MayBeNull(p)),
        })]);
        bool notification = ContractTypes.IsNotification(m);
        // OpenRPC 1.3: a method without a result is a notification.
        if (!notification)
        {
            var result = ContractTypes.Result(m);
            method["result"] = new JsonObject
            {
                ["name"] = result is null ? "done" : result.IsGenericType ? "list" : result.Name,
                ["schema"] = result is null ? new JsonObject { ["type"] = "null" }
                    : OrNull(Schema(result, docs, root: false), ContractTypes.ResultMayBeNull(m)),
            };
        }
        method["x-umlmicro-sent-as"] = notification ? "notification" : "request";
        method["x-umlmicro-restore"] = ContractTypes.Restore(m);
        method["x-umlmicro-on-error"] = OnError(m, notification);
        method["errors"] = new JsonArray([.. (notification ? NotificationErrors : RequestErrors).Select(code => (JsonNode)new JsonObject
        {
            ["$ref"] = $"#/components/errors/{code}",
        })]);
        return method;
    }

    /// <summary>
    /// What the supervisor does when the server answers this method with an error (any code, "method not found"
    /// included), with something that is not its result, or not in time: Kernel.Supervisor/Servers/ServerLink.cs
    /// (Checkpoint, Handshake, SendLocked) and ReplayLog.cs decide it; docs/contract/README.md, "Errors", explains it.
    /// </summary>
    private static string OnError(MethodInfo m, bool notification)
    {
        string nullAnswer = ContractTypes.Result(m) is null || ContractTypes.ResultMayBeNull(m) ? "" : " A null result is not its result: the same.";
        return ContractTypes.Wire(m) switch
        {
            _ when notification => "Never heard: a notification has no answer. A server logs its refusal on standard error.",
            "checkpoint" => "Fallback: an error (-32601 included) or a value that is not a string is taken as null: the server keeps no checkpoints and is not asked again; a restart replays the whole history.",
            "restore" => "The guest ends (exit status 125): the history before the checkpoint is gone.",
            "sched/vcpu_tick" => "Fallback: -32601 (method not found) means the server has no run policy: the supervisor's built-in round-robin decides for the rest of the run. Another error, or a result that is not a decision: the guest ends (exit status 125) with one line naming the server and this method. While the server restarts, or its answer is over a second late, the built-in round-robin holds the guest; no answer within Servers.CallTimeoutMs: the server is killed, restarted and asked again.",
            "hello" => "At startup the guest does not start (exit status 2); at a restart that restart failed and another is tried (the restart budget). Another name or version counts the same.",
            _ => "The guest ends (exit status 125) with one line naming the server and this method; at startup, before the guest runs (*/configure), umlmicro exits with status 2 instead." +
                nullAnswer + " No answer within Servers.CallTimeoutMs: the server is killed, restarted and asked again; no answer again: the guest ends (125)." +
                (ContractTypes.Restore(m) == "replay" ? " Replayed after a restart, a different answer than the first time ends the guest (125)." : ""),
        };
    }

    /// <summary>The schema of <paramref name="t"/>: a contract type's own (<paramref name="root"/>) or a reference to it.</summary>
    private static JsonNode Schema(Type t, DocComments docs, bool root)
    {
        var node = Wire.GetJsonSchemaAsNode(t, new JsonSchemaExporterOptions
        {
            TreatNullObliviousAsNonNullable = true,
            TransformSchemaNode = (context, schema) =>
            {
                var type = context.TypeInfo.Type;
                if (Format(Nullable.GetUnderlyingType(type) ?? type) is { } format && schema is JsonObject number) number["format"] = format;
                if (!ContractTypes.IsNamed(type)) return schema;
                if (context.Path.IsEmpty && root)
                {
                    if (schema is JsonObject o && docs.Of(type) is { Length: > 0 } text) o.Insert(0, "description", text);
                    if (type.IsEnum && schema is JsonObject e)
                    {
                        var values = Enum.GetNames(type).Select(n => (Name: n, Text: docs.OfValue(type, n))).Where(v => v.Text.Length > 0).ToList();
                        if (values.Count > 0) e["x-umlmicro-enum-descriptions"] = new JsonObject(values.Select(v => KeyValuePair.Create(v.Name, (JsonNode?)v.Text)));
                    }
                    return schema;
                }
                var nullable = schema is JsonObject o2 && o2["type"] is JsonArray types && types.Any(x => x?.GetValue<string>() == "null");
                return OrNull(new JsonObject { ["$ref"] = $"#/components/schemas/{type.Name}" }, nullable);
            },
        });
        return node;
    }

    private static JsonNode OrNull(JsonNode schema, bool nullable)
    {
        if (!nullable || schema is not JsonObject o) return schema;
        if (o["type"] is JsonValue single)
        {
            o["type"] = new JsonArray((string)single!, "null");
            return o;
        }
        if (!o.ContainsKey("$ref")) return schema;
        return new JsonObject { ["oneOf"] = new JsonArray(schema, new JsonObject { ["type"] = "null" }) };
    }

    /// <summary>The range of a JSON integer, as the C# type behind it holds it (addresses are full 64-bit unsigned numbers).</summary>
    private static string? Format(Type t) =>
        t == typeof(int) ? "int32" : t == typeof(uint) ? "uint32" : t == typeof(long) ? "int64" : t == typeof(ulong) ? "uint64" : null;

    private static readonly string[] RequestErrors = ["ParseError", "InvalidRequest", "MethodNotFound", "InvalidParams", "ProtocolViolation"];
    private static readonly string[] NotificationErrors = ["InvalidParams", "ProtocolViolation"];

    /// <summary>The errors a server answers (docs/contract/README.md, "Errors", says what the supervisor does with each).</summary>
    private static JsonObject Errors() => new()
    {
        ["ParseError"] = Error(-32700, "the line is not JSON (cut off, not UTF-8, nested deeper than 64)"),
        ["InvalidRequest"] = Error(-32600, "JSON, but not a request: a batch, a bare value, an id that is neither a string nor an integer, no method name, a jsonrpc other than \"2.0\", a line over 16 MiB"),
        ["MethodNotFound"] = Error(-32601, "no such method"),
        ["InvalidParams"] = Error(-32602, "params that are not the method's: not an array or object, too few or too many, a wrong type, a null where the schema has none, a member without a default missing"),
        ["ProtocolViolation"] = Error(-32000, "a well-formed request that is wrong whatever the guest did: the supervisor's books and the server's disagree (an unknown pid, a second init, a checkpoint restored into a used server)"),
    };

    private static JsonObject Error(int code, string message) => new() { ["code"] = code, ["message"] = message };
}
