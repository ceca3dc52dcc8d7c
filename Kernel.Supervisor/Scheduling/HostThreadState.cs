using Microsoft.Win32.SafeHandles;

namespace UmlMicro.Supervisor.Scheduling;

/// <summary>What the host says about one of its threads in /proc/TID/stat: whether it runs, and its nice value.</summary>
internal readonly record struct HostThreadState(char State, int Nice)
{
    /// <summary>R: running or runnable on the host. S and D are blocked in a syscall, t a ptrace stop, T a job-control stop.</summary>
    public bool Running => State == 'R';

    [ThreadStatic] private static byte[]? t_buffer;

    /// <summary>The state of host thread <paramref name="tid"/>; null when it is gone.</summary>
    public static HostThreadState? Read(int tid) => ReadFile(tid, "stat") is { } n ? Parse(t_buffer.AsSpan(0, n)) : null;

    /// <summary>The CPU time host thread <paramref name="tid"/> has used, in nanoseconds (/proc/TID/schedstat's first
    /// field); null when it is gone.</summary>
    public static long? ReadRunNs(int tid)
    {
        if (ReadFile(tid, "schedstat") is not { } n) return null;
        var text = t_buffer.AsSpan(0, n);
        int space = text.IndexOf((byte)' ');
        return long.TryParse(space < 0 ? text : text[..space], out long ns) ? ns : null;
    }

    /// <summary>/proc/TID/<paramref name="file"/> into this thread's buffer: its length, or null when the thread is gone.</summary>
    private static int? ReadFile(int tid, string file)
    {
        var buffer = t_buffer ??= new byte[512];
        try
        {
            using SafeFileHandle f = File.OpenHandle($"/proc/{tid}/{file}");
            return RandomAccess.Read(f, buffer, 0);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>"pid (comm) S ppid ..." — comm may hold spaces and parentheses, so fields count from the last ')'.</summary>
    public static HostThreadState? Parse(ReadOnlySpan<byte> stat)
    {
        int close = stat.LastIndexOf((byte)')');
        if (close < 0 || close + 2 >= stat.Length) return null;
        var rest = stat[(close + 2)..];
        char state = (char)rest[0];
        // rest starts at field 3 (state); nice is field 19.
        for (int field = 3; field < 19; field++)
        {
            int space = rest.IndexOf((byte)' ');
            if (space < 0) return new HostThreadState(state, 0);
            rest = rest[(space + 1)..];
        }
        int end = rest.IndexOf((byte)' ');
        var text = end < 0 ? rest : rest[..end];
        return new HostThreadState(state, int.TryParse(text, out int nice) ? nice : 0);
    }
}
