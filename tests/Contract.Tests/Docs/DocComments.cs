using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using UmlMicro.Contracts.Servers;

namespace UmlMicro.ContractTests.Docs;

/// <summary>
/// The contract's doc comments (Shared.Contracts.xml, written by its build) as plain text for the generated contract:
/// a reference to a contract method becomes its wire name, to a type or parameter its name in backquotes, so that the
/// documents never name a C# method.
/// </summary>
public sealed partial class DocComments
{
    private readonly Dictionary<string, XElement> members;
    private readonly Dictionary<string, string> wireNames;

    private DocComments(XDocument xml)
    {
        members = xml.Descendants("member").ToDictionary(m => (string)m.Attribute("name")!);
        wireNames = ContractInfo.All.SelectMany(c => c.Methods).Distinct()
            .ToDictionary(m => $"M:{m.DeclaringType!.FullName}.{m.Name}", ContractTypes.Wire);
    }

    public static DocComments Load()
    {
        var file = Path.ChangeExtension(typeof(IKernelServer).Assembly.Location, ".xml");
        if (!File.Exists(file)) throw new FileNotFoundException($"{file} is missing: Shared.Contracts builds it (GenerateDocumentationFile)");
        return new DocComments(XDocument.Load(file));
    }

    public string Of(Type t) => Summary($"T:{t.FullName}");

    /// <summary>The doc comment of one value of an enum.</summary>
    public string OfValue(Type enumType, string name) => Summary($"F:{enumType.FullName}.{name}");

    public string Of(MethodInfo m) => Summary($"M:{m.DeclaringType!.FullName}.{m.Name}{Signature(m)}");

    private static string Signature(MethodInfo m)
    {
        var ps = m.GetParameters();
        return ps.Length == 0 ? "" : "(" + string.Join(",", ps.Select(p => XmlTypeName(p.ParameterType))) + ")";
    }

    private static string XmlTypeName(Type t) => t.IsGenericType
        ? $"{t.Namespace}.{t.Name[..t.Name.IndexOf('`')]}{{{string.Join(",", t.GetGenericArguments().Select(XmlTypeName))}}}"
        : t.FullName!;

    private string Summary(string member) =>
        members.TryGetValue(member, out var m) && m.Element("summary") is { } s ? Text(s) : "";

    private string Text(XElement e)
    {
        var sb = new StringBuilder();
        foreach (var node in e.Nodes())
        {
            switch (node)
            {
                case XText text: sb.Append(text.Value); break;
                case XElement { Name.LocalName: "para" } para: sb.Append("\n\n").Append(Text(para)).Append("\n\n"); break;
                case XElement { Name.LocalName: "c" } code: sb.Append('`').Append(code.Value).Append('`'); break;
                case XElement { Name.LocalName: "paramref" or "typeparamref" } p: sb.Append('`').Append((string?)p.Attribute("name")).Append('`'); break;
                case XElement { Name.LocalName: "see" } see: sb.Append('`').Append(Reference((string?)see.Attribute("cref") ?? "")).Append('`'); break;
                case XElement other: sb.Append(Text(other)); break;
            }
        }
        // Doc comments are wrapped at 120 columns in the source: one paragraph is one line here.
        var paragraphs = Paragraph().Split(sb.ToString()).Select(p => Whitespace().Replace(p, " ").Trim()).Where(p => p.Length > 0);
        return string.Join("\n\n", paragraphs);
    }

    /// <summary>A cref as the wire knows it: a contract method's wire name, a member's or a type's own name.</summary>
    private string Reference(string cref)
    {
        var bare = cref.Contains('(') ? cref[..cref.IndexOf('(')] : cref;
        if (wireNames.TryGetValue(bare, out var wire)) return wire;
        var name = bare[(bare.IndexOf(':') + 1)..];
        var parts = name.Split('.');
        // T:Ns.Type -> Type; P:Ns.Type.Member or F:Ns.Enum.Value -> Type.Member
        return bare.StartsWith("T:", StringComparison.Ordinal) ? parts[^1] : $"{parts[^2]}.{parts[^1]}";
    }

    [GeneratedRegex(@"\n\s*\n")]
    private static partial Regex Paragraph();

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();
}
