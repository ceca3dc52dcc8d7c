using System.Reflection;
using System.Text;
using System.Text.Json.Nodes;

namespace UmlMicro.ContractTests.Docs;

/// <summary>
/// The generated part of a server's page (docs/contract/NAME.md): one entry per method and per type, in Markdown, made
/// from the same OpenRPC document, between two markers; the rest of the page is prose written by hand.
/// </summary>
public static class MethodReference
{
    public const string Begin = "<!-- BEGIN GENERATED REFERENCE: do not edit (tests/Contract.Tests/Docs) -->";
    public const string End = "<!-- END GENERATED REFERENCE -->";

    /// <summary><paramref name="page"/> with what stands between the markers replaced by <paramref name="reference"/>.</summary>
    public static string Replace(string page, string reference)
    {
        int begin = page.IndexOf(Begin, StringComparison.Ordinal), end = page.IndexOf(End, StringComparison.Ordinal);
        if (begin < 0 || end < begin) throw new InvalidOperationException($"the page has no {Begin} ... {End}");
        return page[..(begin + Begin.Length)] + "\n" + reference + page[end..];
    }

    public static string Render(ContractInfo contract, DocComments docs)
    {
        var doc = JsonNode.Parse(OpenRpcDocument.Render(contract, docs))!;
        var sb = new StringBuilder();
        sb.Append("\n### Methods\n\n");
        // The contract's own summary: what the server owns, and rules that hold for every method (how paths are encoded).
        if (doc["x-umlmicro-summary"] is { } summary) sb.Append($"{summary}\n\n");
        sb.Append($"Contract `{contract.Name}`, version {contract.Version}: `hello` answers ");
        sb.Append($"`{{\"Name\":\"{contract.Name}\",\"ContractVersion\":{contract.Version},\"ServerPid\":PID}}`.\n\n");
        sb.Append("| wire name | sent as | params (a positional array) | result | restore |\n|---|---|---|---|---|\n");
        foreach (var m in doc["methods"]!.AsArray())
        {
            var ps = string.Join(", ", m!["params"]!.AsArray().Select(p => $"`{p!["name"]}`: {TypeOf(p!["schema"]!)}"));
            var result = m["result"] is { } r ? TypeOf(r["schema"]!) : "none (no id, no answer)";
            sb.Append($"| `{m["name"]}` | {m["x-umlmicro-sent-as"]} | [{ps}] | {result} | {m["x-umlmicro-restore"]} |\n");
        }
        foreach (var m in doc["methods"]!.AsArray())
        {
            sb.Append($"\n#### `{m!["name"]}`\n\n");
            if (m["description"] is { } text) sb.Append($"{text}\n\n");
            sb.Append($"If refused: {m["x-umlmicro-on-error"]}\n");
        }
        sb.Append("\n### Types\n\nField names as sent; a field not marked required may be left out (its default is then used). ");
        sb.Append("Enums are strings: the names listed.\n");
        foreach (var (name, schema) in doc["components"]!["schemas"]!.AsObject())
        {
            sb.Append($"\n#### {name}\n\n");
            if (schema!["description"] is { } text) sb.Append($"{text}\n\n");
            if (schema["enum"] is JsonArray values)
            {
                sb.Append($"A string: {string.Join(", ", values.Select(v => $"`\"{v}\"`"))}.\n");
                foreach (var (value, meaning) in schema["x-umlmicro-enum-descriptions"]?.AsObject() ?? [])
                    sb.Append($"\n- `\"{value}\"`: {meaning}");
                if (schema["x-umlmicro-enum-descriptions"] is not null) sb.Append('\n');
                continue;
            }
            var required = schema["required"]?.AsArray().Select(x => (string)x!).ToHashSet() ?? [];
            sb.Append("| field | JSON | required | default |\n|---|---|---|---|\n");
            foreach (var (field, type) in schema["properties"]?.AsObject() ?? [])
                sb.Append($"| `{field}` | {TypeOf(type!)} | {(required.Contains(field) ? "yes" : "no")} | {(type!["default"] is { } d ? $"`{d.ToJsonString()}`" : "")} |\n");
        }
        sb.Append('\n');
        return sb.ToString();
    }

    /// <summary>A schema in a few words: a type's name, a JSON type, "list of ...", "or null".</summary>
    private static string TypeOf(JsonNode schema)
    {
        if (schema["$ref"] is { } r) return $"[{((string)r!).Split('/')[^1]}](#{((string)r!).Split('/')[^1].ToLowerInvariant()})";
        if (schema["oneOf"] is JsonArray any) return string.Join(" or ", any.Select(s => TypeOf(s!)));
        if (schema["enum"] is JsonArray values) return string.Join(" \\| ", values.Select(v => $"`\"{v}\"`"));
        var types = schema["type"] switch
        {
            JsonArray a => a.Select(x => (string)x!).ToList(),
            JsonValue v => [(string)v!],
            _ => ["any"],
        };
        var words = types.Select(t => t == "array" && schema["items"] is { } items ? $"list of {TypeOf(items)}"
            : t == "integer" && schema["format"] is { } format ? $"integer ({format})" : t).ToList();
        return string.Join(" or ", words);
    }
}
