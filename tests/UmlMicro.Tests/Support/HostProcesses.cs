using System.Runtime.InteropServices;

namespace UmlMicro.Tests;

/// <summary>What /proc says about the host's processes, and sending them signals.</summary>
public static class HostProcesses
{
    public const int SIGHUP = 1, SIGINT = 2, SIGQUIT = 3, SIGKILL = 9, SIGTERM = 15, SIGSTOP = 19;

    [DllImport("libc", SetLastError = true, EntryPoint = "kill")]
    private static extern int SysKill(int pid, int sig);

    public static void Signal(int pid, int sig) =>
        Assert.True(SysKill(pid, sig) == 0, $"kill({pid}, {sig}) failed: errno {Marshal.GetLastPInvokeError()}");

    public sealed record Info(int Pid, int PPid, string Comm, char State);

    /// <summary>Every process of the host (not threads), with its parent, name and state; vanished ones skipped.</summary>
    public static List<Info> All()
    {
        var list = new List<Info>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid)) continue;
            var info = Stat(pid);
            if (info is not null) list.Add(info);
        }
        return list;
    }

    public static Info? Stat(int pid)
    {
        string stat;
        try { stat = File.ReadAllText($"/proc/{pid}/stat"); }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
        // pid (comm) state ppid ...; comm may contain spaces and parentheses: it ends at the last ')'.
        var open = stat.IndexOf('(');
        var close = stat.LastIndexOf(')');
        if (open < 0 || close < open) return null;
        var rest = stat[(close + 2)..].Split(' ');
        return new Info(pid, int.Parse(rest[1]), stat[(open + 1)..close], rest[0][0]);
    }

    /// <summary>Live (not zombie) processes whose initial environment holds NAME=VALUE exactly.</summary>
    public static List<Info> WithEnvironment(string name, string value)
    {
        var needle = $"{name}={value}";
        var found = new List<Info>();
        foreach (var p in All())
        {
            if (p.Pid == Environment.ProcessId || p.State is 'Z' or 'X') continue;
            byte[] env;
            try { env = File.ReadAllBytes($"/proc/{p.Pid}/environ"); }
            catch (IOException) { continue; }
            catch (UnauthorizedAccessException) { continue; }
            if (System.Text.Encoding.UTF8.GetString(env).Split('\0').Contains(needle)) found.Add(p);
        }
        return found;
    }

    public static bool IsAlive(int pid) => Stat(pid) is { State: not ('Z' or 'X') };

    /// <summary>
    /// Polls until <paramref name="condition"/> holds or <paramref name="within"/> is over; returns whether it held.
    /// For things that settle asynchronously on the host (a killed process disappearing), never to measure time.
    /// </summary>
    public static bool Eventually(Func<bool> condition, TimeSpan within)
    {
        var deadline = DateTime.UtcNow + within;
        while (true)
        {
            if (condition()) return true;
            if (DateTime.UtcNow > deadline) return false;
            Thread.Sleep(50);
        }
    }
}
