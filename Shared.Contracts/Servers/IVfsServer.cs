using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading.Tasks;
using StreamJsonRpc;

namespace UmlMicro.Contracts.Servers;

/// <summary>What the caller means to do with a path. It decides whether the last symlink is followed by default,
/// whether a read-only layer must be copied up first, and whether the last component may be missing.</summary>
public enum PathOp
{
    /// <summary>open/openat/creat: <see cref="PathRequest.OpenFlags"/> say whether it writes or creates.</summary>
    Open,
    Stat,
    Access,
    Exec,
    Readlink,
    Chdir,
    /// <summary>Reads something about an object without opening it (getxattr, statfs, inotify).</summary>
    Lookup,
    /// <summary>Changes an existing object in place (truncate, chmod, chown, utimes, setxattr): copied up first.</summary>
    Modify,
    /// <summary>Makes a new entry the host creates (mkdir, mknod, bind): the last component must not exist.</summary>
    Create,
}

/// <summary>
/// One mount of the guest's namespace. <paramref name="Kind"/> is bind, tmpfs, overlay (the root: a read-only
/// host tree under a private copy-on-write layer), proc or dev. <paramref name="Source"/> is the host directory
/// (the lower layer of an overlay), empty for proc and dev.
/// </summary>
public sealed record MountSpec(string Kind, string GuestPath, string Source, bool ReadOnly);

/// <summary>
/// The guest's namespace and what the kernel says about itself. <paramref name="Mounts"/> come in order, the root
/// first; <paramref name="LeaseEpoch"/> is the file of the lease epoch (see <see cref="PathResolution.Lease"/>), or ""
/// for a supervisor that keeps no leases; <paramref name="StateDir"/> is a private host directory the supervisor made for the VFS (its copy-on-write
/// layer unless <paramref name="UpperDir"/> names one to keep, its journal, and the files it materialises) and
/// <paramref name="MemoryDir"/> one on a host tmpfs for tmpfs mounts; both are hidden from the guest and removed by
/// the supervisor when the guest ends. Release and Hostname are uname's (/proc/sys/kernel); Cpus the guest's CPU
/// count (/proc/cpuinfo, /sys/devices/system/cpu; 0 leaves the host's); MemoryLimit /proc/meminfo's MemTotal (0:
/// the host's). <paramref name="OnlyUid"/> and <paramref name="OnlyGid"/>: the guest's user namespace maps only this uid
/// and gid (a run by an unprivileged user), so a capability of a guest task covers only files with that owner and group,
/// as Linux's capable_wrt_inode_uidgid decides; null (a run by root): it maps every host id.
/// </summary>
public sealed record VfsConfig(
    IReadOnlyList<MountSpec> Mounts,
    string InitialCwd,
    string StateDir,
    string MemoryDir,
    string UpperDir = "",
    string Release = "",
    string Hostname = "",
    int Cpus = 0,
    long MemoryLimit = 0,
    string LeaseEpoch = "",
    uint? OnlyUid = null,
    uint? OnlyGid = null);

/// <summary>
/// Who asks (contract version 7): the credentials of the guest thread a path request or change is made for, as the host
/// enforces them on that thread. <paramref name="Uid"/> and <paramref name="Gid"/> are its fsuid and fsgid,
/// <paramref name="Groups"/> its supplementary groups, <paramref name="Caps"/> its effective capability set (bit N is
/// capability N). The VFS carries out lookups and namespace changes as a privileged host process, so it checks these
/// as Linux does (inode_permission, may_create, may_delete, the sticky bit); an answer it leases holds only for the
/// same credentials. Equal when every field is (the groups in the same order).
/// </summary>
public sealed record Credentials(uint Uid, uint Gid, IReadOnlyList<uint> Groups, ulong Caps)
{
    /// <summary>A guest root with every capability (what the kernel's own tests and tools ask as).</summary>
    public static readonly Credentials Root = new(0, 0, [], ulong.MaxValue);

    public bool Equals(Credentials? other) =>
        other is not null && Uid == other.Uid && Gid == other.Gid && Caps == other.Caps && Groups.SequenceEqual(other.Groups);

    public override int GetHashCode()
    {
        var h = new HashCode();
        h.Add(Uid);
        h.Add(Gid);
        h.Add(Caps);
        foreach (var g in Groups) h.Add(g);
        return h.ToHashCode();
    }

    public bool HasCapability(int cap) => (Caps & (1UL << cap)) != 0;

    /// <summary>in_group_p: the fsgid or one of the supplementary groups.</summary>
    public bool InGroup(uint gid) => gid == Gid || Groups.Contains(gid);
}

/// <summary>A guest process as procfs lists it: its guest pid, the host pid whose host /proc directory holds its
/// files, and its threads (none for a zombie). The supervisor makes the list from Sched's (sched/processes).</summary>
public sealed record ProcPid(int Vpid, int HostPid, IReadOnlyList<ProcTid> Threads);

/// <summary>A thread of a guest process: its guest tid and its host tid.</summary>
public sealed record ProcTid(int Vtid, int HostTid);

/// <summary>The servers other than the VFS that make procfs text (<see cref="ProcTextRequest"/>).</summary>
public enum ProcOwner
{
    /// <summary>sched/proc_text: a task's stat and status (ids, state, scheduling).</summary>
    Sched,
    /// <summary>mm/proc_text: a process's maps and smaps_rollup (its address space).</summary>
    Mm,
}

/// <summary>
/// A procfs file the VFS cannot make alone (contract version 11): ask <paramref name="Owner"/> for the text of
/// <paramref name="Request"/>, setting its Stopped mark for host task <paramref name="HostTid"/> and, when
/// <paramref name="HostSource"/> is set, its HostText to what the host's file of that path holds at that moment (read
/// by the supervisor, so that the answer stays right while the text changes). Then, when <paramref name="Material"/> is
/// set, the owner's text is the file's text as it is: the supervisor writes it to that file of the VFS's memory
/// directory (its proc folder: a new file renamed over it, so a reader of the older text keeps it) and gives the host
/// that path, without asking the VFS again; otherwise it asks the VFS again with the text
/// (<see cref="PathRequest.Rendered"/>), which makes the file from it (maps: the guest's names of the mapped files).
/// <para>
/// An answer with a Render may be a lease (<see cref="PathResolution.Lease"/>): it then holds for the same question
/// asked by the same thread with the same <see cref="PathRequest.Processes"/> list, since it names a task of that list.
/// </para>
/// </summary>
public sealed record ProcRender(ProcOwner Owner, int HostTid, ProcTextRequest Request, string? HostSource = null, string? Material = null);

/// <summary>The text <see cref="ProcRender.Owner"/> made for file <paramref name="File"/> of task
/// <paramref name="Vtid"/> of process <paramref name="Vpid"/>.</summary>
public sealed record ProcRendered(int Vpid, int Vtid, string File, ProcText Text);

/// <summary>
/// A path a guest names: <paramref name="Path"/> relative to the directory whose host path is
/// <paramref name="DirHostPath"/> (what the guest's dirfd refers to), or to the cwd when that is null.
/// </summary>
public sealed record PathArg(string Path, string? DirHostPath = null);

/// <summary>
/// Guest thread <paramref name="Vtid"/> of process <paramref name="Vpid"/>, with credentials <paramref name="Creds"/>,
/// names a path for <paramref name="Op"/>. <paramref name="OpenFlags"/> are open's flags (or mknod's mode for Create). <paramref name="Processes"/> is
/// filled in when an earlier answer said <see cref="PathResolution.NeedProcesses"/>, <paramref name="Rendered"/> when
/// one said <see cref="PathResolution.Render"/>. <paramref name="Resolve"/> is openat2's resolve flags (RESOLVE_*): the
/// walk keeps them as Linux's does (no symlinks, no magic links, no mount crossing; BENEATH and IN_ROOT scoped to the
/// directory of <see cref="PathArg.DirHostPath"/>, or the cwd), since the host is handed a path already resolved.
/// <paramref name="Xattr"/>: the VFS carries out this extended-attribute call on the object the path resolves to (see
/// <see cref="XattrCall"/>) and answers <see cref="PathResolution.Xattr"/>; such an answer is never a lease.
/// </summary>
public sealed record PathRequest(
    int Vpid,
    int Vtid,
    PathArg Arg,
    PathOp Op,
    bool FollowLast,
    Credentials Creds,
    int OpenFlags = 0,
    IReadOnlyList<ProcPid>? Processes = null,
    ProcRendered? Rendered = null,
    int Resolve = 0,
    XattrCall? Xattr = null);

public enum XattrOp
{
    Get,
    Set,
    List,
    Remove,
}

/// <summary>
/// An extended-attribute call the VFS carries out itself (contract version 10), sent in a <see cref="PathRequest"/> whose
/// op is Lookup (Get, List) or Modify (Set, Remove: an object of a read-only layer is copied up first). When
/// <paramref name="Fd"/> is set it names the object instead of the request's path: the host's link to the calling
/// thread's fd (/proc/TID/fd/N).
/// <para>
/// The names of the <see cref="IsKept"/> namespaces are the kernel's to keep: the host refuses a process outside its
/// initial user namespace every trusted.* name and every security.* name but security.capability (which it keeps for a
/// user namespace itself), while Linux lets a guest's root (CAP_SYS_ADMIN) set them. The VFS keeps them per inode, as a
/// filesystem does, and answers with Linux's errnos (EEXIST, ENODATA, ERANGE, ENOSPC, EPERM). Any other name is the
/// host's: the supervisor resolves the path as for any other call and the host carries the call out. List is always
/// the VFS's: the host's names and the kept ones together.
/// </para>
/// <paramref name="Name"/> is bytes as paths are; <paramref name="Value"/> Set's value; <paramref name="Flags"/> Set's
/// XATTR_CREATE or XATTR_REPLACE; <paramref name="Size"/> the size of the guest's buffer for Get and List (0 asks for
/// the size). What Linux checks before it looks the path up (the flags, the name's length, the value's size, guest
/// memory) is the caller's.
/// </summary>
public sealed record XattrCall(XattrOp Op, string Name = "", byte[]? Value = null, int Flags = 0, long Size = 0, string? Fd = null)
{
    public const string TrustedPrefix = "trusted.", SecurityPrefix = "security.", Capability = "security.capability";

    /// <summary>A name of a namespace the kernel keeps itself.</summary>
    public static bool IsKept(string name) =>
        name.StartsWith(TrustedPrefix, StringComparison.Ordinal) || (name.StartsWith(SecurityPrefix, StringComparison.Ordinal) && name != Capability);
}

/// <summary>An <see cref="XattrCall"/> carried out: <paramref name="Result"/> is the syscall's (a length, or 0), <paramref name="Data"/>
/// what goes into the guest's buffer (Get's value, List's names each ended by a NUL). A refusal is the answer's errno.</summary>
public sealed record XattrResult(long Result, byte[]? Data = null);

/// <summary>
/// The VFS answer: <paramref name="Errno"/> 0 means go on; <paramref name="HostPath"/> is what the host must be
/// given instead of the guest's string, or null when the guest's own string already names the right file.
/// <paramref name="GuestPath"/> is the absolute guest path that was resolved. <paramref name="NeedProcesses"/>:
/// the path runs through /proc, ask again with the guest's processes. <paramref name="Render"/>: the path is a procfs
/// file whose text another server makes (/proc/PID/stat from Sched, maps from MM): ask it, then write its text or ask
/// again with it, as <see cref="ProcRender"/> says. <paramref name="CommitOnSuccess"/>: the
/// host is to create an entry; when it succeeds, tell the VFS with vfs/created so that it stops hiding the name.
/// <paramref name="Interpreter"/>: the path named a "#!" script that the host can only reach by a host path, which
/// Linux would pass to the interpreter; the kernel must start the interpreter itself (HostPath is then the
/// interpreter's) with argv = Interpreter, [InterpreterArg], the guest's own path string, argv[1...].
/// <paramref name="MakesName"/>: the host is to make a new name with this answer (a create of a missing name).
/// <para>
/// <paramref name="Lease"/>: not 0, the VFS grants this answer as a lease. The supervisor may give the same answer to
/// the same question (the same path string from the same place: the root, the same dirfd's directory, or the same
/// process's cwd while no process has changed its cwd or been made; the same op, follow and flags) without asking,
/// for at most <paramref name="LeaseMs"/> milliseconds and only while the lease epoch still holds the value
/// <paramref name="Lease"/>. The lease epoch is a little-endian 64-bit counter at offset 0 of the file
/// <see cref="VfsConfig.LeaseEpoch"/>, which the VFS maps shared and the supervisor reads at every reuse. A VFS that
/// grants leases must make the epoch differ from every lease it granted before any namespace change it makes or
/// answers for becomes visible (and after a restart, before its first answer); it grants leases only for answers
/// that depend on who asks through the request's credentials alone (a Render also on the asking thread and its
/// processes: see <see cref="ProcRender"/>). An answer is also void once a call that changed
/// an object's attributes (chmod, chown, an ACL: what permissions are decided from) has ended after its question was
/// asked: the supervisor sees those calls end, the VFS does not. A lease may say a name is missing (ENOENT): since the host makes a name only after
/// the VFS answered <paramref name="MakesName"/>, the supervisor keeps such a lease only while no call answered so has
/// ended since it asked. A VFS that wants to see every lookup answers 0 and never touches the file.
/// </para>
/// <paramref name="Xattr"/>: the outcome of the request's <see cref="PathRequest.Xattr"/> call when Errno is 0.
/// </summary>
public sealed record PathResolution(
    int Errno,
    string? HostPath,
    string? GuestPath,
    bool NeedProcesses = false,
    bool CommitOnSuccess = false,
    string? Interpreter = null,
    string? InterpreterArg = null,
    ProcRender? Render = null,
    long Lease = 0,
    int LeaseMs = 0,
    bool MakesName = false,
    XattrResult? Xattr = null);

/// <summary>A namespace change the VFS carries out itself (it must, to keep its layers and whiteouts in step).</summary>
public enum NameOp
{
    Unlink,
    Rmdir,
    /// <summary>rename/renameat/renameat2; <see cref="NameChange.Flags"/> are renameat2's.</summary>
    Rename,
    /// <summary>link/linkat; <see cref="NameChange.Flags"/> has AT_SYMLINK_FOLLOW.</summary>
    Link,
    /// <summary>symlink/symlinkat; <see cref="NameChange.Target"/> is the link's text.</summary>
    Symlink,
}

/// <summary>A namespace change made by a guest thread of process <paramref name="Vpid"/> with credentials
/// <paramref name="Creds"/>; <paramref name="RequestId"/>, when not 0, is unique in the guest's life, so that a change sent
/// again after a crash is not made twice.</summary>
public sealed record NameChange(int Vpid, NameOp Op, PathArg Path, Credentials Creds, PathArg? NewPath = null, string? Target = null, int Flags = 0, long RequestId = 0);

public sealed record CwdResult(int Errno, string? Path);

/// <summary>
/// The VFS server: owns the namespace (mounts, copy-on-write layers, procfs, devfs, path resolution) and each
/// process's cwd. Data-plane calls on host-backed files never reach it.
/// <para>
/// Paths are bytes (contract version 9): every path in this contract, guest or host (a path, a dirfd's or a cwd's host
/// path, a symlink's target, an interpreter), is a Linux path (any byte but NUL) carried as a string by one map:
/// valid UTF-8 as itself, each byte that is not part of valid UTF-8 as U+F700 + the byte (U+F780..U+F7FF), and
/// the UTF-8 of U+F780..U+F7FF itself byte by byte the same way (see the README, "Values"). A server hands the host
/// the bytes a string stands for, and decodes the host's names (listings, link texts) the same way.
/// </para>
/// </summary>
[JsonRpcContract, PolyType.GenerateShape(IncludeMethods = PolyType.MethodShapeFlags.PublicInstance)]
public partial interface IVfsServer : IKernelServer
{
    /// <summary>The guest's namespace: the first request after hello, and pid 1's cwd.</summary>
    [Restore(RestoreKind.Replay)]
    [JsonRpcMethod("vfs/configure")]
    Task ConfigureAsync(VfsConfig config);

    /// <summary>A new process: its cwd is copied from the parent (or shared with CLONE_FS).</summary>
    [Restore(RestoreKind.Replay)]
    [Notification]
    [JsonRpcMethod("vfs/process_created")]
    Task ProcessCreatedAsync(int parentVpid, int childVpid, bool shareFs);

    /// <summary>A process ended: its cwd goes.</summary>
    [Restore(RestoreKind.Replay)]
    [Notification]
    [JsonRpcMethod("vfs/process_exited")]
    Task ProcessExitedAsync(int vpid);

    /// <summary>A path a guest thread names: what the host is to be given instead, or the guest's errno.</summary>
    [JsonRpcMethod("vfs/resolve")]
    Task<PathResolution> ResolveAsync(PathRequest request);

    /// <summary>The host created <paramref name="guestPath"/> as the VFS asked (see <see cref="PathResolution.CommitOnSuccess"/>).</summary>
    [Restore(RestoreKind.Journal)]
    [Notification]
    [JsonRpcMethod("vfs/created")]
    Task CreatedAsync(string guestPath);

    /// <summary>Unlink, rmdir, rename, link or symlink, done by the VFS; the answer is 0 or the guest's errno.</summary>
    [Restore(RestoreKind.Journal)]
    [JsonRpcMethod("vfs/change")]
    Task<int> ChangeAsync(NameChange change);

    /// <summary>A guest call that changes an object's attributes (chmod, chown, an xattr, and their fd forms) has ended:
    /// who may search which directory may have changed, so the VFS forgets what it kept of earlier walks. Nothing to
    /// restore: a restarted VFS has kept nothing.</summary>
    [Notification]
    [JsonRpcMethod("vfs/attributes_changed")]
    Task AttributesChangedAsync();

    /// <summary>The guest path of the process's cwd, or an errno (ESRCH: no such process; ENOENT: the cwd was removed).</summary>
    [JsonRpcMethod("vfs/getcwd")]
    Task<CwdResult> GetCwdAsync(int vpid);

    /// <summary>The host carried out a chdir/fchdir for <paramref name="vpid"/>: its cwd is now the directory the
    /// host calls <paramref name="hostPath"/>.</summary>
    [Restore(RestoreKind.Replay)]
    [Notification]
    [JsonRpcMethod("vfs/set_cwd")]
    Task SetCwdAsync(int vpid, string hostPath);

    /// <summary>The guest path of a host path the guest holds (an fd's target), or null when it has none.</summary>
    [JsonRpcMethod("vfs/guest_path")]
    Task<string?> GuestPathAsync(string hostPath);
}
