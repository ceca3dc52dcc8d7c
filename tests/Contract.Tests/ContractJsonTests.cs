using System.Reflection;
using System.Text.Json;
using UmlMicro.ContractTests.Docs;
using UmlMicro.Contracts.Servers;

namespace UmlMicro.ContractTests;

/// <summary>
/// Every value a contract method takes or answers has its JSON generated in <see cref="ContractJson"/>: a NativeAOT
/// server cannot build a serializer at run time, so a type added to a contract and not listed there would fail
/// only when a guest first makes that call.
/// </summary>
[Trait(Kit.Kind, Kit.Document)]
public sealed class ContractJsonTests
{
    public static TheoryData<Type> Contracts => new() { typeof(IKernelServer), typeof(IVfsServer), typeof(IMmServer), typeof(ISchedServer) };

    [Theory]
    [MemberData(nameof(Contracts))]
    public void Every_parameter_and_result_type_has_generated_json(Type contract)
    {
        var missing = new List<string>();
        foreach (var method in contract.GetMethods())
        {
            var types = method.GetParameters().Select(p => p.ParameterType).Where(t => t != typeof(CancellationToken)).ToList();
            if (method.ReturnType.IsGenericType && method.ReturnType.GetGenericTypeDefinition() == typeof(Task<>))
                types.Add(method.ReturnType.GetGenericArguments()[0]);
            missing.AddRange(types.Where(t => ContractJson.Default.GetTypeInfo(t) is null).Select(t => $"{method.Name}: {t}"));
        }
        Assert.Empty(missing);
    }

    public static TheoryData<Type> Enums => new(ContractTypes.Reachable().Where(t => t.IsEnum));

    /// <summary>Enums travel as their declared names (contract versions VFS 8, MM 7, Sched 5), so that a server in
    /// another language reads "Thread", not a number that means whatever the enum's order says.</summary>
    [Theory]
    [MemberData(nameof(Enums))]
    public void Every_enum_value_is_written_as_its_declared_name(Type type)
    {
        var options = new JsonSerializerOptions { TypeInfoResolver = ContractJson.Default };
        foreach (var value in Enum.GetValues(type))
            Assert.Equal($"\"{Enum.GetName(type, value)}\"", JsonSerializer.Serialize(value, type, options));
    }
}
