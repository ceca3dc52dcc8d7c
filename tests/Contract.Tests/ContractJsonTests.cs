using System.Reflection;
using UmlMicro.Contracts.Servers;

namespace UmlMicro.ContractTests;

/// <summary>
/// Every value a contract method takes or answers has its JSON generated in <see cref="ContractJson"/>: a NativeAOT
/// server cannot build a serializer at run time, so a type added to a contract and not listed there would fail
/// only when a guest first makes that call.
/// </summary>
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
}
