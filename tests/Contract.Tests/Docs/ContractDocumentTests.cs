namespace UmlMicro.ContractTests.Docs;

/// <summary>
/// docs/contract is generated from Shared.Contracts, as docs/SYSCALLS.md is from the syscall table: the OpenRPC
/// documents whole, and the method and type reference inside each server's page. A contract change that is not
/// regenerated fails here. Regenerate: UMLMICRO_UPDATE_DOCS=1 dotnet test tests/Contract.Tests --filter ContractDocument
/// </summary>
[Trait(Kit.Kind, Kit.Document)]
public sealed class ContractDocumentTests
{
    private const string Regenerate = "regenerate: UMLMICRO_UPDATE_DOCS=1 dotnet test tests/Contract.Tests --filter ContractDocument";

    public static TheoryData<string> Servers => new(ContractInfo.All.Select(c => c.Name));

    private static bool Updating => Environment.GetEnvironmentVariable("UMLMICRO_UPDATE_DOCS") == "1";

    private static string Folder => Path.Combine(RepositoryRoot(), "docs", "contract");

    [Theory, MemberData(nameof(Servers))]
    public void The_openrpc_document_is_generated_from_the_contract(string server)
    {
        var file = Path.Combine(Folder, $"{server}.openrpc.json");
        var rendered = OpenRpcDocument.Render(ContractInfo.Of(server), DocComments.Load());
        if (Updating) File.WriteAllText(file, rendered);
        Assert.True(File.Exists(file), $"{file} is missing: {Regenerate}");
        Assert.True(rendered == File.ReadAllText(file), $"docs/contract/{server}.openrpc.json differs from the contract: {Regenerate}");
    }

    [Theory, MemberData(nameof(Servers))]
    public void The_reference_in_the_servers_page_is_generated_from_the_contract(string server)
    {
        var file = Path.Combine(Folder, $"{server}.md");
        Assert.True(File.Exists(file), $"{file} is missing: it is written by hand, with the markers {MethodReference.Begin} and {MethodReference.End}");
        var page = File.ReadAllText(file);
        var rendered = MethodReference.Replace(page, MethodReference.Render(ContractInfo.Of(server), DocComments.Load()));
        if (Updating) File.WriteAllText(file, rendered);
        Assert.True(rendered == File.ReadAllText(file), $"the reference in docs/contract/{server}.md differs from the contract: {Regenerate}");
    }

    /// <summary>The prose is written by hand: a wire method it names that the contract no longer has is caught here.</summary>
    [Fact]
    public void Every_wire_method_the_prose_names_is_in_the_contract()
    {
        var known = ContractInfo.All.SelectMany(c => c.Methods).Select(ContractTypes.Wire).ToHashSet();
        var pages = Directory.GetFiles(Folder, "*.md").Append(Path.Combine(RepositoryRoot(), "README.md"))
            .Append(Path.Combine(RepositoryRoot(), "docs", "ARCHITECTURE.md"));
        var unknown = pages.SelectMany(page => System.Text.RegularExpressions.Regex.Matches(File.ReadAllText(page), @"\b(?:vfs|mm|sched)/[a-z_]+\b")
                .Select(m => m.Value).Where(name => !known.Contains(name)).Select(name => $"{Path.GetFileName(page)}: {name}"))
            .Distinct().ToList();
        Assert.Empty(unknown);
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "UmlMicro.sln"))) return dir.FullName;
        throw new InvalidOperationException($"No UmlMicro.sln above {AppContext.BaseDirectory}");
    }
}
