using System.Linq;
using System.Text;

namespace UmlMicro.Contracts.Syscalls;

/// <summary>
/// Renders docs/SYSCALLS.md from <see cref="SyscallTable"/>, so the compatibility list can never say
/// something the kernel does not do. A unit test fails when the committed file is stale.
/// </summary>
public static class CompatibilityList
{
    public static string Render()
    {
        var rows = SyscallTable.All.OrderBy(r => r.Number).ToList();
        var sb = new StringBuilder();
        sb.Append("<!-- Generated from Shared.Contracts/Syscalls/SyscallTable.cs by CompatibilityList.Render(); do not edit.\n");
        sb.Append("     Regenerate: UMLMICRO_UPDATE_DOCS=1 dotnet test tests/UmlMicro.Tests --filter CompatibilityList -->\n");
        sb.Append("# Syscall compatibility (x86-64)\n\n");
        sb.Append("What the kernel does with each syscall it knows by name. **pass**: the host runs it as is; ");
        sb.Append("**emulate**: the owner computes the result and the host never runs it; **rewrite**: the owner ");
        sb.Append("translates arguments or results (guest pids, paths) or records what the host did; **deny**: ");
        sb.Append("refused with the errno shown. Numbers not listed pass to the host, which answers ENOSYS for ");
        sb.Append("numbers it does not know either.\n\n");
        sb.Append("The owner is who decides: **vfs**, **mm** or **sched** when that server is asked, or when the supervisor ");
        sb.Append("answers from what the server granted it (a path lease, a placement window, the pids Sched gave); ");
        sb.Append("**kernel** when the supervisor decides alone (a guest pid translated with the grants it keeps, its own ");
        sb.Append("configuration); **host** when the call passes untouched.\n\n");
        foreach (var d in new[] { Disposition.Emulate, Disposition.Rewrite, Disposition.Deny, Disposition.Pass })
            sb.Append($"- {d.ToString().ToLowerInvariant()}: {rows.Count(r => r.Disposition == d)}\n");
        sb.Append("\n| nr | name | arguments | owner | disposition |\n|---:|---|---|---|---|\n");
        foreach (var r in rows)
        {
            string args = string.Join(", ", r.Args.Select(a => a.ToString().ToLowerInvariant()));
            string owner = r.IsRouted ? r.Owner.ToString().ToLowerInvariant() : "host";
            string disp = r.Disposition == Disposition.Deny ? $"deny ({ErrnoName(r.DenyErrno)})" : r.Disposition.ToString().ToLowerInvariant();
            sb.Append($"| {r.Number} | {r.Name} | {args} | {owner} | {disp} |\n");
        }
        return sb.ToString();
    }

    private static string ErrnoName(int errno) => errno switch
    {
        Linux.Errno.EPERM => "EPERM",
        Linux.Errno.EACCES => "EACCES",
        Linux.Errno.ENOSYS => "ENOSYS",
        _ => errno.ToString(),
    };
}
