using System.IO.Compression;

namespace UmlMicro.Supervisor.Images;

internal enum CompressionKind { None, Gzip, Zstd, Xz }

/// <summary>
/// Which compressor made a file, told by its first bytes (never by its name or media type), and the stream that
/// undoes it. gzip is .NET's own; zstd and xz are SharpCompress's managed decoders (no native library to ship).
/// </summary>
internal static class Compression
{
    /// <summary>Reads the first bytes of <paramref name="stream"/> and puts its position back.</summary>
    public static CompressionKind Sniff(Stream stream)
    {
        Span<byte> magic = stackalloc byte[6];
        long start = stream.Position;
        int n = stream.ReadAtLeast(magic, magic.Length, throwOnEndOfStream: false);
        stream.Position = start;
        magic = magic[..n];
        if (magic.StartsWith((ReadOnlySpan<byte>)[0x1f, 0x8b])) return CompressionKind.Gzip;
        if (magic.StartsWith((ReadOnlySpan<byte>)[0x28, 0xb5, 0x2f, 0xfd])) return CompressionKind.Zstd;
        if (magic.StartsWith((ReadOnlySpan<byte>)[0xfd, (byte)'7', (byte)'z', (byte)'X', (byte)'Z', 0])) return CompressionKind.Xz;
        if (magic.StartsWith("BZh"u8)) throw new ImageRefused("bzip2 compression is not supported (gzip, zstd and xz are)");
        return CompressionKind.None;
    }

    /// <summary>The decompressed content of <paramref name="raw"/>; disposing it leaves <paramref name="raw"/> open.</summary>
    public static Stream Open(Stream raw, CompressionKind kind) => kind switch
    {
        CompressionKind.Gzip => new GZipStream(raw, CompressionMode.Decompress, leaveOpen: true),
        // checkEndOfStream: a zstd stream cut short is an error, not a quiet end
        CompressionKind.Zstd => new SharpCompress.Compressors.ZStandard.DecompressionStream(raw, checkEndOfStream: true, leaveOpen: true),
        CompressionKind.Xz => new SharpCompress.Compressors.Xz.XZStream(new KeepOpen(raw)),
        _ => new KeepOpen(raw),
    };

    /// <summary>A view of a stream that does not close it (XZStream has no leaveOpen of its own).</summary>
    private sealed class KeepOpen(Stream inner) : Stream
    {
        public override int Read(Span<byte> buffer) => inner.Read(buffer);
        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);
        public override bool CanRead => true;
        public override bool CanSeek => inner.CanSeek;
        public override bool CanWrite => false;
        public override long Length => inner.Length;
        public override long Position { get => inner.Position; set => inner.Position = value; }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => inner.Seek(offset, origin);
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
