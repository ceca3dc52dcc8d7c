using System.Reflection;
using StreamJsonRpc;
using UmlMicro.Contracts.Servers;

namespace UmlMicro.ContractTests.Docs;

/// <summary>One server contract as its interface declares it: the wire name and version hello gives, and its methods.</summary>
public sealed record ContractInfo(string Name, int Version, Type Interface)
{
    public static readonly IReadOnlyList<ContractInfo> All =
    [
        new(Contract.VfsName, Contract.VfsVersion, typeof(IVfsServer)),
        new(Contract.MmName, Contract.MmVersion, typeof(IMmServer)),
        new(Contract.SchedName, Contract.SchedVersion, typeof(ISchedServer)),
    ];

    public static ContractInfo Of(string name) => All.Single(c => c.Name == name);

    /// <summary>The methods every server has (IKernelServer), then the contract's own, each in declaration order.</summary>
    public IReadOnlyList<MethodInfo> Methods =>
        [.. ContractTypes.Declared(typeof(IKernelServer)), .. ContractTypes.Declared(Interface)];
}

/// <summary>What the contract interfaces say about their methods and the types that travel, found by reflection.</summary>
public static class ContractTypes
{
    public static IEnumerable<MethodInfo> Declared(Type contract) =>
        contract.GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly).OrderBy(m => m.MetadataToken);

    public static string Wire(MethodInfo m) => m.GetCustomAttribute<JsonRpcMethodAttribute>()?.Name ?? m.Name;

    public static bool IsNotification(MethodInfo m) => m.IsDefined(typeof(NotificationAttribute));

    /// <summary>replay, journal or query (<see cref="RestoreAttribute"/>; none: a query).</summary>
    public static string Restore(MethodInfo m) => m.GetCustomAttribute<RestoreAttribute>()?.Kind.ToString().ToLowerInvariant() ?? "query";

    /// <summary>The result type, or null for a method that answers nothing but its completion.</summary>
    public static Type? Result(MethodInfo m) => m.ReturnType.IsGenericType ? m.ReturnType.GetGenericArguments()[0] : null;

    public static bool ResultMayBeNull(MethodInfo m) =>
        Result(m) is null || new NullabilityInfoContext().Create(m.ReturnParameter).GenericTypeArguments[0].ReadState == NullabilityState.Nullable;

    public static bool MayBeNull(ParameterInfo p) =>
        !p.ParameterType.IsValueType && new NullabilityInfoContext().Create(p).ReadState == NullabilityState.Nullable;

    /// <summary>Records and enums of the contract namespace: they get a schema of their own, named as the type.</summary>
    public static bool IsNamed(Type t) => t.Namespace == typeof(IKernelServer).Namespace && (t.IsEnum || (t.IsClass && t != typeof(string)));

    /// <summary>Every named type a contract's parameters and results reach, through members and list elements.</summary>
    public static IEnumerable<Type> Reachable(ContractInfo? contract = null)
    {
        var seen = new HashSet<Type>();
        var methods = contract?.Methods ?? ContractInfo.All.SelectMany(c => c.Methods).Distinct();
        foreach (var m in methods)
            foreach (var t in m.GetParameters().Select(p => p.ParameterType).Append(Result(m)))
                if (t is not null) Visit(t, seen);
        return seen.OrderBy(t => t.Name, StringComparer.Ordinal);
    }

    private static void Visit(Type t, HashSet<Type> seen)
    {
        t = Nullable.GetUnderlyingType(t) ?? t;
        if (t.IsGenericType)
        {
            foreach (var a in t.GetGenericArguments()) Visit(a, seen);
            return;
        }
        if (!IsNamed(t) || !seen.Add(t)) return;
        foreach (var p in t.GetProperties(BindingFlags.Public | BindingFlags.Instance)) Visit(p.PropertyType, seen);
    }
}
