using UmlMicro.Supervisor.Cli;

namespace UmlMicro.Supervisor.Images;

/// <summary>
/// What `--image PATH` names, made into a root directory the guest can run on: a root filesystem tarball (plain or
/// compressed), an OCI layout directory, an oci-archive or a docker-save tarball, told apart by content. Layers are
/// unpacked once into the cache (<see cref="ImageCache"/>) and the root is used read-only. A refused image is one
/// <see cref="UsageError"/> line and leaves nothing behind: what was unpacked of it (in the cache's tmp/) is removed.
/// </summary>
internal static class ImageStore
{
    /// <summary>$XDG_CACHE_HOME/umlmicro, else $HOME/.cache/umlmicro.</summary>
    public static string DefaultCacheDir()
    {
        // The XDG spec: a relative XDG_CACHE_HOME is invalid and is ignored.
        if (Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { } xdg && Path.IsPathRooted(xdg)) return Path.Join(xdg, "umlmicro");
        string home = Environment.GetEnvironmentVariable("HOME") is { Length: > 0 } h ? h
            : throw new UsageError("--image: neither XDG_CACHE_HOME nor HOME is set, so there is no cache directory for images");
        return Path.Join(home, ".cache", "umlmicro");
    }

    /// <summary>Where unpacking shows its progress: standard error when it is a terminal, else nowhere.</summary>
    public static TextWriter? TerminalProgress() => Tmds.Linux.LibC.isatty(2) == 1 ? Console.Error : null;

    /// <summary>
    /// The image at <paramref name="path"/>, unpacked into <paramref name="cacheDir"/> unless it is there already;
    /// <paramref name="progress"/> (a terminal) shows the unpacking, one line per layer.
    /// </summary>
    /// <exception cref="UsageError">The image is refused: "image PATH: what is wrong".</exception>
    public static Image Open(string path, string cacheDir, TextWriter? progress)
    {
        var cache = new ImageCache(Path.GetFullPath(cacheDir));
        string label = $"unpacking {Path.GetFileName(Path.TrimEndingDirectorySeparator(path))}";
        try
        {
            cache.RemoveStale();
            string io = Native.Interop.DotNetPath(Path.GetFullPath(path, Native.Interop.HostCwd())); // what .NET opens; messages name the user's
            if (Directory.Exists(io))
            {
                if (!File.Exists(Path.Join(io, "oci-layout"))) throw new ImageRefused("a directory, but not an OCI image layout (--root takes a directory)");
                var plan = OciLayout.Read(new DirectoryFiles(io));
                if (cache.Find(plan.Key) is { } root) return new Image(root, plan.Config, Unpacked: false);
                using var unpack = cache.Begin();
                return Unpack(plan, unpack, progress, label);
            }
            var identity = Nodes.Identity(io) ?? throw new ImageRefused("no such file or directory");
            if (cache.Recall(identity) is { } known) return known;
            var image = OpenFile(io, cache, progress, label);
            cache.Remember(identity, image);
            return image;
        }
        catch (ImageRefused e)
        {
            throw new UsageError(OneLine($"image {path}: {e.Message}"));
        }
        catch (EndOfStreamException)
        {
            throw new UsageError(OneLine($"image {path}: the archive is truncated"));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageError(OneLine($"image {path}: {e.Message}"));
        }
        catch (Exception e) when (e is not UsageError)
        {
            // The tar reader and the three decoders answer malformed input with many kinds of exception (InvalidData,
            // InvalidOperation, Overflow, Format, SharpCompress's own...): all of them mean the same to the user.
            throw new UsageError(OneLine($"image {path}: the archive is corrupt ({e.Message})"));
        }
    }

    /// <summary>The message as one printable line: an entry's name is the archive's to choose, newlines included.</summary>
    private static string OneLine(string message) => string.Concat(message.Select(c => char.IsControl(c) ? '?' : c));

    private static Image OpenFile(string path, ImageCache cache, TextWriter? progress, string label)
    {
        using var file = File.OpenRead(path);
        var compression = Compression.Sniff(file);
        var kind = ArchiveKinds.Of(file, compression);
        using var unpack = cache.Begin();
        if (kind == ArchiveKind.RootFs)
        {
            // Keyed by the file's digest, which only this pass over it can tell: the memo spares the next runs.
            var applier = new LayerApplier(unpack.Root, Nodes.IsRoot);
            var digest = Apply(applier, file, new Layer("", () => file, -1, null, null), progress, label);
            applier.Finish();
            return new Image(unpack.Commit(ImageCache.Key([$"tar {digest}"])), ImageConfig.None, Unpacked: true);
        }

        // An image archive's blobs are read in place, so it must be an uncompressed tar on disk.
        string tar = path;
        if (compression != CompressionKind.None)
        {
            tar = unpack.Scratch("archive.tar");
            using var shown = Show(file, progress, $"decompressing {Path.GetFileName(path)}");
            using var content = Compression.Open(shown, compression);
            using var copy = File.Create(tar);
            content.CopyTo(copy);
        }
        var files = new TarFiles(tar);
        var plan = kind == ArchiveKind.Oci ? OciLayout.Read(files) : DockerArchive.Read(files);
        return cache.Find(plan.Key) is { } root ? new Image(root, plan.Config, Unpacked: false) : Unpack(plan, unpack, progress, label);
    }

    private static Image Unpack(ImagePlan plan, ImageCache.Unpack unpack, TextWriter? progress, string label)
    {
        var applier = new LayerApplier(unpack.Root, Nodes.IsRoot);
        foreach (var layer in plan.Layers)
        {
            using var raw = layer.Open() ?? throw new ImageRefused($"{layer.Name} is missing");
            Apply(applier, raw, layer, progress, $"{label} {layer.Name}");
        }
        applier.Finish();
        return new Image(unpack.Commit(plan.Key), plan.Config, Unpacked: true);
    }

    /// <summary>Applies one layer from its stored bytes, checking its digests on the way; answers the bytes' digest.</summary>
    private static Digest Apply(LayerApplier applier, Stream raw, Layer layer, TextWriter? progress, string label)
    {
        var compression = Compression.Sniff(raw);
        using var shown = Show(raw, progress, label);
        using var blob = new DigestStream(shown, layer.Blob, layer.Size);
        using (var tar = Compression.Open(blob, compression))
        using (var content = layer.Content is null ? tar : new DigestStream(tar, layer.Content))
        {
            try
            {
                applier.Apply(content);
            }
            catch (ImageRefused e) when (layer.Name.Length > 0)
            {
                throw new ImageRefused($"{layer.Name}: {e.Message}");
            }
            (content as DigestStream)?.Finish($"{layer.Name}'s content");
        }
        return blob.Finish(layer.Name);
    }

    private static Stream Show(Stream raw, TextWriter? progress, string label) =>
        progress is null ? raw : new ProgressLine(raw, raw.Length, progress, label);
}
