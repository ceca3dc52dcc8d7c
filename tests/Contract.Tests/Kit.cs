namespace UmlMicro.ContractTests;

/// <summary>
/// How the conformance kit (tests/server-kit.sh) sorts the tests: by the trait "Kind" — wire (framing, malformed
/// input, required fields: what any JSON-RPC server must get right) or semantics (what a method means) — and by the
/// trait "Server" (vfs, mm, sched, or any for tests run against each server).
/// </summary>
public static class Kit
{
    public const string Kind = "Kind", Wire = "Wire", Semantics = "Semantics", Document = "Document";
    public const string Server = "Server", AnyServer = "any";

    /// <summary>The servers the tests run against: all three, or only the one UMLMICRO_KIT_SERVER names (the kit's).</summary>
    public static IReadOnlyList<string> Servers { get; } = Selected();

    public static bool Includes(string server) => Servers.Contains(server);

    private static IReadOnlyList<string> Selected()
    {
        string[] all = ["Vfs", "Mm", "Sched"];
        var only = Environment.GetEnvironmentVariable("UMLMICRO_KIT_SERVER");
        if (string.IsNullOrEmpty(only)) return all;
        return all.Where(s => s.Equals(only, StringComparison.OrdinalIgnoreCase)).ToArray() is { Length: 1 } one
            ? one
            : throw new InvalidOperationException($"UMLMICRO_KIT_SERVER={only}: not vfs, mm or sched");
    }
}
