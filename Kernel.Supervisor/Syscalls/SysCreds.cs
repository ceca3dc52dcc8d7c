using UmlMicro.Contracts.Servers;
using UmlMicro.Supervisor.Guest;

namespace UmlMicro.Supervisor.Syscalls;

/// <summary>
/// The credentials a task's path calls are checked with (PathRequest.Creds, NameChange.Creds): read from the host's
/// /proc/TID/status when first needed and kept on the task until the task itself may change them. The host runs the
/// set*id calls, setgroups and capset; their entry only drops what was kept, so the next path call reads them again
/// (execve drops them too: it may give or take capabilities). No other call changes a task's credentials.
/// </summary>
internal static class SysCreds
{
    public static readonly string[] Changing =
        ["setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setfsuid", "setfsgid", "setgroups"];

    public static void Register(Dictionary<string, EntryHandler> h)
    {
        foreach (var name in Changing) h[name] = Forget;
    }

    /// <summary>The task may change its credentials in this call.</summary>
    public static void Forget(SyscallCall c) => c.Task.Creds = null;

    /// <summary>The calling task's credentials (the task is stopped in the call, so they cannot change meanwhile).</summary>
    public static Credentials Of(SyscallCall c) => Read(c).Fs;

    /// <summary>What access and faccessat check with (do_faccessat's override): the real uid and gid, and the permitted
    /// capabilities for a real root, none for anyone else.</summary>
    public static Credentials OfAccess(SyscallCall c) => Read(c).Access;

    private static HostStatus.TaskCredentials Read(SyscallCall c) =>
        c.Task.Creds ??= HostStatus.Credentials(c.Tid) ?? throw new GuestFault(0); // gone: nothing will see the answer
}
