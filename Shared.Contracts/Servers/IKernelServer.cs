using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading.Tasks;
using StreamJsonRpc;

namespace UmlMicro.Contracts.Servers;

/// <summary>The greeting every server answers first; the supervisor refuses a server whose name or version differs.</summary>
public sealed record ServerHello(string Name, int ContractVersion, int ServerPid);

/// <summary>What every kernel server speaks, whatever its subsystem.</summary>
public interface IKernelServer
{
    /// <summary>The server's name, contract version and process id: the first request a server gets, and a barrier
    /// after a restart's replay (its answer means every message before it was applied).</summary>
    [JsonRpcMethod("hello")]
    Task<ServerHello> HelloAsync();

    /// <summary>Asks the server to exit cleanly (it also exits when its input pipe closes).</summary>
    [Notification]
    [JsonRpcMethod("shutdown")]
    Task ShutdownAsync();

    /// <summary>
    /// The server's whole state, as a text only the server reads, from which <see cref="RestoreAsync"/> rebuilds it;
    /// or null from a server that keeps no checkpoints. With one, the supervisor's replay history starts at the
    /// checkpoint instead of at the beginning, so restoring a restarted server takes as long however long the guest ran.
    /// </summary>
    [JsonRpcMethod("checkpoint")]
    Task<string?> CheckpointAsync();

    /// <summary>A fresh server takes the state of a checkpoint: the first message after hello.</summary>
    [JsonRpcMethod("restore")]
    Task RestoreAsync(string checkpoint);
}

/// <summary>Names and versions of the contracts; bump a version when a method's meaning or its JSON changes
/// (VFS 8, MM 7, Sched 5: enums travel as names; VFS 9: every path is bytes, carried as <see cref="Linux.PathBytes"/>
/// says; Sched 6: sched/vcpu_tick; VFS 10, MM 8, Sched 7: each server makes its own procfs text, mm/proc_text and
/// sched/proc_text; the VFS carries out the extended-attribute calls of the names it keeps, <see cref="PathRequest.Xattr"/>; Sched 8: Sched
/// keeps each thread's scheduling attributes, sched/getpriority, sched/setpriority, sched/setattr, sched/getattr; VFS 11: a
/// procfs Render names the host file of its text and the file the supervisor writes the text to, and may be leased).</summary>
public static class Contract
{
    public const string VfsName = "vfs", MmName = "mm", SchedName = "sched";
    public const int VfsVersion = 11, MmVersion = 8, SchedVersion = 8;
}
