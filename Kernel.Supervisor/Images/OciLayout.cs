namespace UmlMicro.Supervisor.Images;

/// <summary>
/// Reads an OCI image layout (a directory, or an oci-archive's files): index.json, the manifest it leads to (through
/// nested indexes, choosing linux/amd64), the config, and the layers. Every blob read is checked against its
/// descriptor's digest and size; a media type not listed here is refused rather than guessed at.
/// </summary>
internal static class OciLayout
{
    private const string OciIndex = "application/vnd.oci.image.index.v1+json";
    private const string DockerList = "application/vnd.docker.distribution.manifest.list.v2+json";
    private const string OciManifest = "application/vnd.oci.image.manifest.v1+json";
    private const string DockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
    private const string OciConfig = "application/vnd.oci.image.config.v1+json";
    private const string DockerConfig = "application/vnd.docker.container.image.v1+json";

    private static readonly string[] LayerTypes =
    [
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.v1.tar+zstd",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
    ];

    private const int MaxNesting = 4;

    public static ImagePlan Read(LayoutFiles files)
    {
        var layout = ImageJson.Parse(files.ReadAll("oci-layout") ?? throw new ImageRefused("oci-layout is missing"),
            ImageJson.Default.OciLayoutFile, "oci-layout");
        if (layout.ImageLayoutVersion?.StartsWith("1.", StringComparison.Ordinal) != true)
            throw new ImageRefused($"oci-layout has version '{layout.ImageLayoutVersion}', not 1.x");
        var index = ImageJson.Parse(files.ReadAll("index.json") ?? throw new ImageRefused("index.json is missing"),
            ImageJson.Default.OciDocument, "index.json");
        var manifest = Manifest(files, index, "index.json", 0);

        var configDescriptor = manifest.Config ?? throw new ImageRefused("the manifest has no config");
        if (configDescriptor.MediaType is not (OciConfig or DockerConfig))
            throw new ImageRefused($"the config has media type '{configDescriptor.MediaType}', not a container image's");
        var config = Accept(ImageJson.Parse(Blob(files, configDescriptor, "the config"), ImageJson.Default.ConfigFile, "the config"));

        var descriptors = manifest.Layers ?? [];
        var layers = descriptors.Select((d, i) =>
        {
            string name = $"layer {i + 1}/{descriptors.Count}";
            if (!LayerTypes.Contains(d.MediaType)) throw new ImageRefused($"{name} has the unknown media type '{d.MediaType}'");
            var digest = Digest.Parse(d.Digest, name);
            return new Layer($"{name} ({digest.Hex[..12]})", () => files.Open(digest.BlobPath), d.Size, digest, null);
        }).ToList();
        return new ImagePlan(layers, config, ImageCache.Key(layers.Select(l => l.Blob.ToString()!)));
    }

    /// <summary>The image config's run defaults, once its platform is one this kernel runs.</summary>
    public static ImageConfig Accept(ConfigFile config)
    {
        if (config.Os is { } os && os != "linux") throw new ImageRefused($"the image is for {os}, not linux");
        if (config.Architecture is { } arch && arch != "amd64") throw new ImageRefused($"the image is for {arch}, not amd64");
        return config.Config ?? ImageConfig.None;
    }

    /// <summary>The manifest an index leads to: its linux/amd64 entry, else its first entry that names no platform.</summary>
    private static OciDocument Manifest(LayoutFiles files, OciDocument index, string what, int depth)
    {
        var entries = index.Manifests ?? [];
        var chosen = entries.FirstOrDefault(m => m.Platform is { Os: "linux", Architecture: "amd64" })
            ?? entries.FirstOrDefault(m => m.Platform is null)
            ?? throw new ImageRefused(entries.Count == 0 ? $"{what} lists no image" : $"{what} has no linux/amd64 image");
        switch (chosen.MediaType)
        {
            case OciIndex or DockerList:
                if (depth == MaxNesting) throw new ImageRefused($"indexes are nested more than {MaxNesting} deep");
                var nested = ImageJson.Parse(Blob(files, chosen, "a nested index"), ImageJson.Default.OciDocument, "a nested index");
                return Manifest(files, nested, "a nested index", depth + 1);
            case OciManifest or DockerManifest:
                return ImageJson.Parse(Blob(files, chosen, "the manifest"), ImageJson.Default.OciDocument, "the manifest");
            default:
                throw new ImageRefused($"{what} names '{chosen.MediaType}', which is neither an image manifest nor an index");
        }
    }

    /// <summary>A small blob (an index, a manifest, a config), checked against its descriptor.</summary>
    private static byte[] Blob(LayoutFiles files, Descriptor descriptor, string what)
    {
        var digest = Digest.Parse(descriptor.Digest, what);
        if (descriptor.Size > LayoutFiles.MaxDocument) throw new ImageRefused($"{what} is larger than a JSON document of an image can be");
        using var stream = files.Open(digest.BlobPath) ?? throw new ImageRefused($"{what} (blob {digest}) is missing");
        if (stream.Length > LayoutFiles.MaxDocument) throw new ImageRefused($"{what} (blob {digest}) is larger than a JSON document of an image can be");
        using var check = new DigestStream(stream, digest, descriptor.Size);
        var bytes = new MemoryStream();
        check.CopyTo(bytes);
        check.Finish($"{what} (blob {digest})");
        return bytes.ToArray();
    }
}
