using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading.Tasks;
using StreamJsonRpc;

namespace UmlMicro.Contracts.Servers;

/// <summary>What the caller means to do with a path; it decides e.g. whether the last symlink is followed.</summary>
public enum PathOp
{
    Open,
    Stat,
    Access,
    Exec,
    Readlink,
    Chdir,
}

/// <summary>The guest's root and first cwd, and what the kernel says about itself: uname's release and host name
/// (/proc/sys/kernel) and the guest's CPU count (/proc/cpuinfo, /sys/devices/system/cpu; 0 leaves the host's).</summary>
public sealed record VfsConfig(string Root, string InitialCwd, string Release = "", string Hostname = "", int Cpus = 0);

/// <summary>A guest names <paramref name="Path"/> relative to <paramref name="DirFd"/> (AT_FDCWD for the cwd);
/// <paramref name="OpenFlags"/> are open's flags for <see cref="PathOp.Open"/>.</summary>
public sealed record PathRequest(int Vpid, int DirFd, string Path, PathOp Op, bool FollowLast, int OpenFlags = 0);

/// <summary>
/// The VFS answer: <paramref name="Errno"/> 0 means go on; <paramref name="HostPath"/> is what the host must be
/// given instead of the guest's string, or null when the guest's own string already names the right file.
/// <paramref name="GuestPath"/> is the absolute guest path that was resolved (for chdir and the trace).
/// </summary>
public sealed record PathResolution(int Errno, string? HostPath, string? GuestPath);

public sealed record CwdResult(int Errno, string? Path);

/// <summary>
/// The VFS server: owns the namespace (mounts, path resolution) and each process's cwd. Data-plane calls on
/// host-backed files never reach it.
/// </summary>
public interface IVfsServer : IKernelServer
{
    [JsonRpcMethod("vfs/configure")]
    Task ConfigureAsync(VfsConfig config);

    /// <summary>A new process: its cwd is copied from the parent (or shared with CLONE_FS).</summary>
    [JsonRpcMethod("vfs/process_created")]
    Task ProcessCreatedAsync(int parentVpid, int childVpid, bool shareFs);

    [JsonRpcMethod("vfs/process_exited")]
    Task ProcessExitedAsync(int vpid);

    [JsonRpcMethod("vfs/resolve")]
    Task<PathResolution> ResolveAsync(PathRequest request);

    [JsonRpcMethod("vfs/getcwd")]
    Task<CwdResult> GetCwdAsync(int vpid);

    /// <summary>The host carried out a chdir/fchdir for <paramref name="vpid"/>: its cwd is now <paramref name="guestPath"/>.</summary>
    [JsonRpcMethod("vfs/set_cwd")]
    Task SetCwdAsync(int vpid, string guestPath);
}
