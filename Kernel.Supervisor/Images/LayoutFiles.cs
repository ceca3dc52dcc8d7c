using System.Formats.Tar;

namespace UmlMicro.Supervisor.Images;

/// <summary>The files of an OCI layout or a docker-save archive, by their path inside it.</summary>
internal abstract class LayoutFiles
{
    /// <summary>The file's content (a seekable stream), or null when there is no such file.</summary>
    public abstract Stream? Open(string path);

    /// <summary>The whole of a small file (an index, a manifest, a config), or null when there is none.</summary>
    public byte[]? ReadAll(string path)
    {
        using var stream = Open(path);
        if (stream is null) return null;
        if (stream.Length > MaxDocument) throw new ImageRefused($"{path} is larger than a JSON document of an image can be");
        var bytes = new byte[stream.Length];
        stream.ReadExactly(bytes);
        return bytes;
    }

    public const long MaxDocument = 16 << 20;
}

/// <summary>An OCI layout directory's files: regular files only (a fifo would block the open, a symlink lead out).</summary>
internal sealed class DirectoryFiles(string directory) : LayoutFiles
{
    public override Stream? Open(string path)
    {
        string full = Path.Join(directory, EntryPath.Relative(path, $"file {path}"));
        return Nodes.Kind(full) == NodeKind.File ? File.OpenRead(full) : null;
    }
}

/// <summary>
/// The regular files of an uncompressed tar on disk (an oci-archive or a docker-save), each read in place: the
/// index keeps where each one's data starts. Symlinks and hard links between them (docker-save links a layer that
/// two images share) are followed inside the archive only.
/// </summary>
internal sealed class TarFiles : LayoutFiles
{
    private readonly string tarPath;
    private readonly Dictionary<string, (long Offset, long Length)> files = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> links = new(StringComparer.Ordinal);

    public TarFiles(string tarPath)
    {
        this.tarPath = tarPath;
        using var tar = File.OpenRead(tarPath);
        using var reader = new TarReader(tar);
        while (reader.GetNextEntry() is { } entry)
        {
            string what = $"entry {entry.Name}";
            string path = EntryPath.Relative(entry.Name, what);
            switch (entry.EntryType)
            {
                case TarEntryType.RegularFile or TarEntryType.V7RegularFile:
                    files[path] = (entry.DataOffset, entry.Length);
                    break;
                case TarEntryType.HardLink:
                    links[path] = EntryPath.Relative(entry.LinkName, $"hard link {entry.Name}");
                    break;
                case TarEntryType.SymbolicLink:
                    links[path] = Resolve(path, entry.LinkName, what);
                    break;
                case TarEntryType.Directory or TarEntryType.GlobalExtendedAttributes:
                    break;
                default:
                    throw new ImageRefused($"{what} has a type an image archive does not hold ({entry.EntryType})");
            }
        }
    }

    /// <summary>A symlink's target as a path inside the archive; one that leaves the archive is refused.</summary>
    private static string Resolve(string path, string target, string what)
    {
        if (target.StartsWith('/')) throw new ImageRefused($"{what} links out of the archive");
        var parts = new List<string>(path.Split('/')[..^1]);
        foreach (var part in target.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (part == ".." && parts.Count == 0) throw new ImageRefused($"{what} links out of the archive");
            if (part == "..") parts.RemoveAt(parts.Count - 1);
            else if (part != ".") parts.Add(part);
        }
        return string.Join('/', parts);
    }

    public override Stream? Open(string path)
    {
        path = EntryPath.Relative(path, $"file {path}");
        for (int hops = 0; hops < 8 && links.TryGetValue(path, out var target); hops++) path = target;
        if (!files.TryGetValue(path, out var place)) return null;
        var stream = File.OpenRead(tarPath);
        if (place.Offset + place.Length > stream.Length)
        {
            stream.Dispose();
            throw new EndOfStreamException();
        }
        return new Slice(stream, place.Offset, place.Length);
    }

    /// <summary>A read-only window on part of a file, which it owns.</summary>
    private sealed class Slice(FileStream file, long offset, long length) : Stream
    {
        private long position;

        public override int Read(Span<byte> buffer)
        {
            int n = (int)Math.Min(buffer.Length, length - position);
            if (n <= 0) return 0;
            n = RandomAccess.Read(file.SafeFileHandle, buffer[..n], offset + position);
            position += n;
            return n;
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override long Seek(long to, SeekOrigin origin) => position = origin switch
        {
            SeekOrigin.Begin => to,
            SeekOrigin.Current => position + to,
            _ => length + to,
        };

        protected override void Dispose(bool disposing)
        {
            if (disposing) file.Dispose();
            base.Dispose(disposing);
        }

        public override bool CanRead => true;
        public override bool CanSeek => true;
        public override bool CanWrite => false;
        public override long Length => length;
        public override long Position { get => position; set => position = value; }
        public override void Flush() { }
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
