using System.Diagnostics;
using System.Text.Json;
using UmlMicro.Contracts.Linux;
using UmlMicro.Contracts.Syscalls;
using UmlMicro.Supervisor.Guest;
using UmlMicro.Supervisor.Syscalls;

namespace UmlMicro.Supervisor.Observability;

/// <summary>
/// --trace FILE: one JSON object per guest syscall, written at its exit stop:
/// {"t":seconds,"pid":1,"tid":1,"name":"openat","args":[...],"disp":"rewrite","server":"vfs","result":3,"us":41.2}
/// </summary>
internal sealed class TraceWriter : IDisposable
{
    private readonly Stream _stream;
    private readonly Utf8JsonWriter _json;
    private readonly long _t0 = Stopwatch.GetTimestamp();
    private readonly object _lock = new();

    public TraceWriter(string path)
    {
        _stream = new FileStream(Native.Interop.CreateFile(path), FileAccess.Write, 1 << 16); // the path's own bytes
        _json = new Utf8JsonWriter(_stream, new JsonWriterOptions { SkipValidation = true });
    }

    /// <summary>The arguments as the trace shows them, decoded from the guest's registers and memory at entry.</summary>
    public static object[] DecodeArgs(SyscallCall call)
    {
        var kinds = call.Info.Args;
        var args = new object[kinds.Length];
        for (int i = 0; i < kinds.Length; i++) args[i] = DecodeArg(call, kinds[i], call.Arg(i));
        return args;
    }

    private static object DecodeArg(SyscallCall call, ArgKind kind, ulong raw)
    {
        switch (kind)
        {
            case ArgKind.Int: case ArgKind.Size: case ArgKind.Pid: case ArgKind.Signal:
                return (long)raw;
            case ArgKind.Fd:
                return (int)raw;
            case ArgKind.DirFd:
                return (int)raw == LinuxFlags.AT_FDCWD ? "AT_FDCWD" : (int)raw;
            case ArgKind.Mode:
                return "0" + Convert.ToString((long)raw, 8);
            case ArgKind.Path: case ArgKind.Str:
                if (raw == 0) return "NULL";
                try
                {
                    return GuestMemory.ReadString(call.Tid, raw, 256) ?? "<long string>";
                }
                catch (GuestFault)
                {
                    return $"<bad pointer 0x{raw:x}>";
                }
            default:
                return raw == 0 && kind is ArgKind.Ptr or ArgKind.InBuf or ArgKind.OutBuf or ArgKind.StrArray ? "NULL" : $"0x{raw:x}";
        }
    }

    /// <summary>Writes the record of a finished call; <paramref name="completed"/> is false for a call that never returned (exit, or a task that died in it).</summary>
    public void Write(GuestTask task, SyscallCall call, long endTimestamp, bool completed)
    {
        lock (_lock)
        {
            _json.Reset();
            _json.WriteStartObject();
            _json.WriteNumber("t", Math.Round((call.StartTimestamp - _t0) / (double)Stopwatch.Frequency, 6));
            _json.WriteNumber("pid", task.Vpid);
            _json.WriteNumber("tid", task.Vtid);
            _json.WriteString("name", call.Info.Name);
            _json.WriteStartArray("args");
            foreach (var a in call.TraceArgs ?? [])
            {
                if (a is long l) _json.WriteNumberValue(l);
                else if (a is int n) _json.WriteNumberValue(n);
                else _json.WriteStringValue(a.ToString());
            }
            _json.WriteEndArray();
            _json.WriteString("disp", call.Info.Disposition.ToString().ToLowerInvariant());
            _json.WriteString("server", call.ServerUsed is { } s ? KernelStats.Name(s) : call.Info.IsRouted ? KernelStats.Name(call.Info.Owner) : "host");
            if (!completed) _json.WriteNull("result");
            else if (call.Info.Ret == RetKind.Ptr && call.Result >= 0) _json.WriteString("result", $"0x{call.Result:x}");
            else _json.WriteNumber("result", call.Result);
            if (call.Result < 0 && call.Result >= -4095) _json.WriteNumber("errno", -call.Result);
            if (call.Note is { } note) _json.WriteString("note", note);
            _json.WriteNumber("us", Math.Round(KernelStats.Micros(endTimestamp - call.StartTimestamp), 1));
            _json.WriteEndObject();
            _json.Flush();
            _stream.WriteByte((byte)'\n');
        }
    }

    /// <summary>Writes the record of a server restart: which server, why, how long the guest was held, what was resent.</summary>
    public void WriteRestart(UmlMicro.Supervisor.Servers.ServerRestart r)
    {
        lock (_lock)
        {
            _json.Reset();
            _json.WriteStartObject();
            _json.WriteNumber("t", Math.Round((Stopwatch.GetTimestamp() - _t0) / (double)Stopwatch.Frequency, 6));
            _json.WriteString("restart", r.Server);
            _json.WriteString("why", r.Why);
            _json.WriteNumber("held_us", Math.Round(r.Held.TotalMicroseconds, 1));
            _json.WriteNumber("replayed", r.Replayed);
            _json.WriteNumber("retried", r.Retried);
            _json.WriteEndObject();
            _json.Flush();
            _stream.WriteByte((byte)'\n');
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _json.Dispose();
            _stream.Dispose();
        }
    }
}
