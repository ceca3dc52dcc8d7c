namespace UmlMicro.Supervisor.Images;

/// <summary>
/// One terminal line that says how far the reading of a stream is (bytes read of the total), rewritten in place
/// with <c>\r</c> as the stream is read and cleared when disposed. Only made for a terminal: a log gets nothing.
/// </summary>
internal sealed class ProgressLine(Stream inner, long total, TextWriter terminal, string label) : Stream
{
    private const long Step = 1 << 20; // a rewrite per MiB read: often enough to move, rare enough to cost nothing
    private long read, shown = -Step;

    public override int Read(Span<byte> buffer)
    {
        int n = inner.Read(buffer);
        read += n;
        if (read - shown >= Step)
        {
            shown = read;
            terminal.Write($"\r{label}: {Mib(read)} / {Mib(total)} MiB\u001b[K");
            terminal.Flush();
        }
        return n;
    }

    private static string Mib(long bytes) => (bytes / (double)Step).ToString("0.0", System.Globalization.CultureInfo.InvariantCulture);

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    protected override void Dispose(bool disposing)
    {
        if (disposing && shown >= 0)
        {
            terminal.Write("\r\u001b[K");
            terminal.Flush();
        }
        base.Dispose(disposing);
    }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => total;
    public override long Position { get => read; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
