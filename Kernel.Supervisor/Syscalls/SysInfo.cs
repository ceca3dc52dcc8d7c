using System.Text;
using UmlMicro.Supervisor.Guest;

namespace UmlMicro.Supervisor.Syscalls;

/// <summary>What the kernel says about itself: uname.</summary>
internal static class SysInfo
{
    private const int UtsField = 65;

    public static void Register(Dictionary<string, EntryHandler> h)
    {
        h["uname"] = Uname;
    }

    private static void Uname(SyscallCall c)
    {
        var id = c.Kernel.Identity;
        var buf = new byte[UtsField * 6];
        string[] fields = [id.Sysname, id.Nodename, id.Release, id.Version, id.Machine, id.Domainname];
        for (int i = 0; i < fields.Length; i++)
        {
            var bytes = Encoding.UTF8.GetBytes(fields[i]);
            bytes.AsSpan(0, Math.Min(bytes.Length, UtsField - 1)).CopyTo(buf.AsSpan(i * UtsField));
        }
        GuestMemory.Write(c.Tid, c.Arg(0), buf);
        c.Return(0);
    }
}
