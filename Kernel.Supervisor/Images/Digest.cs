using System.Security.Cryptography;

namespace UmlMicro.Supervisor.Images;

/// <summary>
/// A content digest as OCI writes it (<c>sha256:HEX</c>). Parsing checks the hex strictly: a digest names a file
/// (blobs/ALGORITHM/HEX), so anything else in it could name a path out of the layout.
/// </summary>
internal readonly record struct Digest(string Algorithm, string Hex)
{
    public static Digest Parse(string? text, string what)
    {
        var (algorithm, hex) = text?.Split(':', 2) is [var a, var h] ? (a, h) : ("", "");
        int length = algorithm switch { "sha256" => 64, "sha512" => 128, _ => 0 };
        if (length == 0 || hex.Length != length || !hex.All(char.IsAsciiHexDigitLower))
            throw new ImageRefused($"{what} has no valid sha256 or sha512 digest ('{text}')");
        return new Digest(algorithm, hex);
    }

    public string BlobPath => $"blobs/{Algorithm}/{Hex}";

    public HashAlgorithmName HashName => Algorithm == "sha512" ? HashAlgorithmName.SHA512 : HashAlgorithmName.SHA256;

    public override string ToString() => $"{Algorithm}:{Hex}";
}

/// <summary>
/// Hashes what is read through it, so a blob is checked in the one pass that unpacks it. <see cref="Finish"/> reads
/// what the reader above left (a tar's end blocks, a compressor's trailer) and refuses a digest or size other than
/// the expected one.
/// </summary>
internal sealed class DigestStream(Stream inner, Digest? expected, long expectedSize = -1) : Stream
{
    private readonly IncrementalHash hash = IncrementalHash.CreateHash(expected?.HashName ?? HashAlgorithmName.SHA256);
    private long length;

    public Digest Finish(string what)
    {
        CopyTo(Null);
        var digest = new Digest(expected?.Algorithm ?? "sha256", Convert.ToHexStringLower(hash.GetHashAndReset()));
        if (expected is { } wanted && digest != wanted)
            throw new ImageRefused($"{what} has digest {digest}, not {wanted}");
        if (expectedSize >= 0 && length != expectedSize)
            throw new ImageRefused($"{what} is {length} bytes, not {expectedSize}");
        return digest;
    }

    public override int Read(Span<byte> buffer)
    {
        int n = inner.Read(buffer);
        hash.AppendData(buffer[..n]);
        length += n;
        return n;
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    protected override void Dispose(bool disposing)
    {
        if (disposing) hash.Dispose();
        base.Dispose(disposing);
    }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => length; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
