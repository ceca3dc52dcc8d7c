using System.Formats.Tar;
using System.Text.RegularExpressions;

namespace UmlMicro.Supervisor.Images;

internal enum ArchiveKind { RootFs, Oci, Docker }

/// <summary>
/// Tells what an image tarball holds, by its entries, never by its name: an OCI layout (an oci-archive), a
/// docker-save archive, or else a root filesystem. A root filesystem is told at its first entry that no image
/// archive has at the top (etc/, usr/, ...), so only an image archive is read to its end here.
/// </summary>
internal static partial class ArchiveKinds
{
    public static ArchiveKind Of(Stream file, CompressionKind compression)
    {
        long start = file.Position;
        bool layout = false, index = false, manifest = false;
        using (var content = Compression.Open(file, compression))
        using (var reader = new TarReader(content, leaveOpen: true))
        {
            for (bool first = true; Next(reader, first) is { } entry; first = false)
            {
                string path = EntryPath.Relative(entry.Name, $"entry {entry.Name}");
                switch (path)
                {
                    case "": continue;
                    case "oci-layout": layout = true; continue;
                    case "index.json": index = true; continue;
                    case "manifest.json": manifest = true; continue;
                }
                if (!ImageArchiveName().IsMatch(path)) return Rewind(file, start, ArchiveKind.RootFs);
            }
        }
        return Rewind(file, start, layout && index ? ArchiveKind.Oci : manifest ? ArchiveKind.Docker : ArchiveKind.RootFs);
    }

    private static TarEntry? Next(TarReader reader, bool first)
    {
        if (!first) return reader.GetNextEntry();
        try
        {
            return reader.GetNextEntry() ?? throw new ImageRefused("an empty archive");
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException)
        {
            throw new ImageRefused("not a tar archive (plain, or compressed with gzip, zstd or xz)");
        }
    }

    private static ArchiveKind Rewind(Stream file, long start, ArchiveKind kind)
    {
        file.Position = start;
        return kind;
    }

    /// <summary>What else an image archive has at its top: blobs/, docker-save's repositories and, before Docker 25, HEX/ and HEX.json.</summary>
    [GeneratedRegex("^(blobs(/.*)?|repositories|[0-9a-f]{64}(\\.json|/.*)?)$")]
    private static partial Regex ImageArchiveName();
}
