using System.Text;
using UmlMicro.Contracts.Linux;

namespace UmlMicro.Supervisor.Cli;

/// <summary>
/// The supervisor's stderr: text written as the bytes it stands for (PathBytes), so that a message naming a path of
/// any bytes shows it as the user typed it, not as the private-use characters that carry such bytes. Written out at
/// every line's end and every string.
/// </summary>
internal sealed class PathBytesWriter(Stream stream) : TextWriter
{
    private readonly StringBuilder _pending = new();

    public override Encoding Encoding => Encoding.UTF8;

    public override void Write(char value)
    {
        _pending.Append(value);
        if (value == '\n') Flush();
    }

    public override void Write(string? value)
    {
        _pending.Append(value);
        Flush();
    }

    public override void Flush()
    {
        if (_pending.Length == 0) return;
        stream.Write(PathBytes.Encode(_pending.ToString()));
        _pending.Clear();
        stream.Flush();
    }
}
