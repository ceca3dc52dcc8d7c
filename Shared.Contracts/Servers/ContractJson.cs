using System.Collections.Generic;
using System.Text.Json.Serialization;

// The proxies generated for the [JsonRpcContract] interfaces are public, so the supervisor builds them directly.
[assembly: StreamJsonRpc.ExportRpcContractProxies]

namespace UmlMicro.Contracts.Servers;

/// <summary>
/// The JSON of every value a contract method takes or answers, generated at compile time: NativeAOT has no
/// reflection-built serializers, and a JIT process starts faster without building them. A contract type missing
/// here fails its first call; ContractJsonTests checks that every parameter and result type is listed.
/// Enums travel as their names as declared ("Process", "Mmap"), never as numbers: a server in another language
/// reads a name it can check, and reordering an enum cannot silently change what a number means.
/// </summary>
[JsonSourceGenerationOptions(UseStringEnumConverter = true)]
[JsonSerializable(typeof(ServerHello))]
[JsonSerializable(typeof(string))]
[JsonSerializable(typeof(int))]
[JsonSerializable(typeof(long))]
[JsonSerializable(typeof(ulong))]
[JsonSerializable(typeof(bool))]
// What a server's StreamJsonRpc sends as an error's data (the exception behind a refusal).
[JsonSerializable(typeof(StreamJsonRpc.Protocol.CommonErrorData))]
// MM
[JsonSerializable(typeof(MmConfig))]
[JsonSerializable(typeof(MmEvent))]
[JsonSerializable(typeof(IReadOnlyList<Vma>))]
[JsonSerializable(typeof(CommitRequest))]
[JsonSerializable(typeof(CommitReply))]
[JsonSerializable(typeof(WindowRequest))]
[JsonSerializable(typeof(PlacementWindow))]
[JsonSerializable(typeof(BrkRequest))]
[JsonSerializable(typeof(BrkPlan))]
[JsonSerializable(typeof(SpaceGrant))]
[JsonSerializable(typeof(MmUsage))]
[JsonSerializable(typeof(ProcTextRequest))]
[JsonSerializable(typeof(ProcText))]
// Sched
[JsonSerializable(typeof(SchedConfig))]
[JsonSerializable(typeof(TaskGrant))]
[JsonSerializable(typeof(TaskCreation))]
[JsonSerializable(typeof(TaskExit))]
[JsonSerializable(typeof(GroupChange))]
[JsonSerializable(typeof(IReadOnlyList<ProcessFacts>))]
[JsonSerializable(typeof(IReadOnlyList<int>))]
[JsonSerializable(typeof(VcpuTick))]
[JsonSerializable(typeof(VcpuDecision))]
[JsonSerializable(typeof(PriorityRequest))]
[JsonSerializable(typeof(PriorityAnswer))]
[JsonSerializable(typeof(AttrRequest))]
[JsonSerializable(typeof(SchedAttr))]
// VFS
[JsonSerializable(typeof(VfsConfig))]
[JsonSerializable(typeof(PathRequest))]
[JsonSerializable(typeof(PathResolution))]
[JsonSerializable(typeof(NameChange))]
[JsonSerializable(typeof(Credentials))]
[JsonSerializable(typeof(CwdResult))]
public sealed partial class ContractJson : JsonSerializerContext;

/// <summary>
/// The contracts' shapes (methods, parameters, results), generated at compile time: how a server's StreamJsonRpc
/// learns what it serves without building code at run time (see <see cref="ServerLoop.RunAsync"/>).
/// </summary>
[PolyType.GenerateShapeFor<IVfsServer>(IncludeMethods = PolyType.MethodShapeFlags.PublicInstance)]
[PolyType.GenerateShapeFor<IMmServer>(IncludeMethods = PolyType.MethodShapeFlags.PublicInstance)]
[PolyType.GenerateShapeFor<ISchedServer>(IncludeMethods = PolyType.MethodShapeFlags.PublicInstance)]
public sealed partial class ContractShapes;
