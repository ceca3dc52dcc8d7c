using System.Reflection;
using StreamJsonRpc;
using UmlMicro.Contracts.Servers;
using UmlMicro.Supervisor.Servers;

namespace UmlMicro.Tests.Servers;

/// <summary>
/// The supervisor's contract tables and forwarders are written by hand (the NativeAOT supervisor cannot find them by
/// reflection): here, by reflection, each is held to its interface — every method listed once, with the wire name,
/// restore kind and notification its attributes give, null as an answer only where the result is nullable, and each forwarder method and table entry calling the method it stands for.
/// </summary>
public sealed class ContractForwarderTests
{
    public static TheoryData<Type> Contracts => [typeof(IVfsServer), typeof(IMmServer), typeof(ISchedServer)];

    private static MethodInfo[] MethodsOf(Type contract) => [.. new[] { contract }.Concat(contract.GetInterfaces()).SelectMany(i => i.GetMethods(BindingFlags.Public | BindingFlags.Instance))];

    private static IReadOnlyDictionary<string, ContractMethod> Table(Type contract) =>
        (IReadOnlyDictionary<string, ContractMethod>)typeof(ContractForwarder<>).MakeGenericType(contract)
            .GetField("Methods", BindingFlags.Static | BindingFlags.NonPublic)!.GetValue(null)!;

    [Theory, MemberData(nameof(Contracts))]
    public void The_table_lists_every_method_with_the_wire_name_and_restore_kind_of_its_attributes(Type contract)
    {
        var table = Table(contract);
        var methods = MethodsOf(contract);
        Assert.Equal(methods.Select(m => m.Name).Order(), table.Keys.Order());
        foreach (var m in methods)
        {
            var entry = table[m.Name];
            Assert.Equal(m.GetCustomAttribute<JsonRpcMethodAttribute>()?.Name ?? m.Name, entry.Wire);
            Assert.Equal(m.GetCustomAttribute<RestoreAttribute>()?.Kind, entry.Restore);
            Assert.True(m.IsDefined(typeof(NotificationAttribute)) == entry.Notification, $"{entry.Wire}: [Notification] and the table differ");
            // A notification has no answer to wait for, so it can have no result either.
            Assert.False(entry.Notification && m.ReturnType != typeof(Task), $"{entry.Wire} is a notification with a result");
            var result = m.ReturnType.IsGenericType ? m.ReturnParameter : null;
            bool nullable = result is null || new NullabilityInfoContext().Create(result).GenericTypeArguments[0].ReadState == NullabilityState.Nullable;
            Assert.True(nullable == entry.AnswersNull, $"{entry.Wire}: whether null is an answer differs from the interface");
        }
    }

    [Theory, MemberData(nameof(Contracts))]
    public void Each_forwarder_method_and_table_entry_calls_the_method_it_names_with_its_arguments(Type contract)
    {
        var table = Table(contract);
        foreach (var m in MethodsOf(contract))
        {
            var args = m.GetParameters().Select(p => Sample(p.ParameterType)).ToArray();

            // Through the forwarder, as a handler calls it: the server gets the call, the forwarder notes the entry.
            var (server, calls) = Recorder.For(contract);
            var forwarder = typeof(ContractForwarder<>).MakeGenericType(contract).GetMethod("Create", BindingFlags.Static | BindingFlags.NonPublic)!
                .Invoke(null, [server])!;
            var proxy = forwarder.GetType().GetField("Item1")!.GetValue(forwarder)!;
            var answer = (Task)m.Invoke(proxy, args)!;
            var call = Assert.Single(calls);
            Assert.Equal(m, call.Method);
            Assert.Equal(args, call.Args);
            var noted = forwarder.GetType().GetField("Item2")!.GetValue(forwarder)!;
            Assert.Same(table[m.Name], noted.GetType().GetField("LastMethod", BindingFlags.Instance | BindingFlags.NonPublic)!.GetValue(noted));
            Assert.Equal(args, (object?[])noted.GetType().GetField("LastArgs", BindingFlags.Instance | BindingFlags.NonPublic)!.GetValue(noted)!);

            // Through the table, as a post or a replay calls it; the answer read back and written as JSON.
            calls.Clear();
            var replayed = table[m.Name].Invoke(server, args);
            call = Assert.Single(calls);
            Assert.Equal(m, call.Method);
            Assert.Equal(args, call.Args);
            var result = table[m.Name].AnswerOf(replayed);
            Assert.Equal(m.ReturnType.IsGenericType ? Recorder.AnswerFor(m.ReturnType.GetGenericArguments()[0]) : null, result);
            Assert.NotNull(table[m.Name].Json(result));
            Assert.Equal(result, table[m.Name].AnswerOf(answer));
        }
    }

    /// <summary>A distinct value of each parameter type (so that arguments passed in the wrong place show).</summary>
    private static int _sample;

    private static object? Sample(Type t) =>
        t == typeof(int) ? Interlocked.Increment(ref _sample)
        : t == typeof(bool) ? true
        : t == typeof(string) ? Guid.NewGuid().ToString()
        : t.IsValueType ? Activator.CreateInstance(t)
        : null;

    /// <summary>A server that records each call and answers a fixed value of the method's result type.</summary>
    public class Recorder : DispatchProxy
    {
        public List<(MethodInfo Method, object?[] Args)> Calls = [];

        public static (object Server, List<(MethodInfo Method, object?[] Args)> Calls) For(Type contract)
        {
            var server = typeof(DispatchProxy).GetMethod(nameof(Create), 2, [])!.MakeGenericMethod(contract, typeof(Recorder)).Invoke(null, null)!;
            return (server, ((Recorder)server).Calls);
        }

        // Values ContractJson can write: the JSON comparison of a replayed answer must work for every result type.
        public static object? AnswerFor(Type t) =>
            t == typeof(int) ? 42
            : t == typeof(string) ? "answer"
            : t == typeof(IReadOnlyList<int>) ? new List<int> { 1, 2 }
            : t == typeof(ServerHello) ? new ServerHello("x", 1, 2)
            : null;

        protected override object? Invoke(MethodInfo? method, object?[]? args)
        {
            Calls.Add((method!, args ?? []));
            if (!method!.ReturnType.IsGenericType) return Task.CompletedTask;
            var t = method.ReturnType.GetGenericArguments()[0];
            return typeof(Task).GetMethod(nameof(Task.FromResult))!.MakeGenericMethod(t).Invoke(null, [AnswerFor(t)]);
        }
    }
}
