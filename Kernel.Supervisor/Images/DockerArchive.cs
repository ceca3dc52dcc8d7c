using System.Security.Cryptography;
using System.Text.RegularExpressions;

namespace UmlMicro.Supervisor.Images;

/// <summary>
/// Reads a docker-save archive (manifest.json at the top, the format `docker save` wrote before OCI layouts): its
/// first image's config and layers. Nothing there carries a layer's stored digest, so each layer is checked against
/// the config's diff_id (the digest of its uncompressed tar), and the config against its file name when that is a
/// digest.
/// </summary>
internal static partial class DockerArchive
{
    public static ImagePlan Read(LayoutFiles files)
    {
        var images = ImageJson.Parse(files.ReadAll("manifest.json") ?? throw new ImageRefused("manifest.json is missing"),
            ImageJson.Default.IReadOnlyListDockerImage, "manifest.json");
        var image = images.FirstOrDefault() ?? throw new ImageRefused("manifest.json lists no image");
        string configPath = image.Config ?? throw new ImageRefused("manifest.json names no config");
        var bytes = files.ReadAll(configPath) ?? throw new ImageRefused($"the config {configPath} is missing");
        if (NamedByDigest().Match(configPath) is { Success: true } named
            && Convert.ToHexStringLower(SHA256.HashData(bytes)) is var actual && actual != named.Groups[1].Value)
            throw new ImageRefused($"the config {configPath} has digest sha256:{actual}");
        var config = ImageJson.Parse(bytes, ImageJson.Default.ConfigFile, "the config");

        var paths = image.Layers ?? [];
        var diffIds = config.Rootfs?.DiffIds ?? [];
        if (paths.Count != diffIds.Count)
            throw new ImageRefused($"manifest.json lists {paths.Count} layers, the config {diffIds.Count}");
        var layers = paths.Select((path, i) =>
        {
            string name = $"layer {i + 1}/{paths.Count}";
            return new Layer(name, () => files.Open(path), -1, null, Digest.Parse(diffIds[i], name));
        }).ToList();
        return new ImagePlan(layers, OciLayout.Accept(config), ImageCache.Key(layers.Select(l => l.Content.ToString()!)));
    }

    /// <summary>"HEX.json" (docker save before 25) or "blobs/sha256/HEX" (since).</summary>
    [GeneratedRegex("^(?:blobs/sha256/)?([0-9a-f]{64})(?:\\.json)?$")]
    private static partial Regex NamedByDigest();
}
