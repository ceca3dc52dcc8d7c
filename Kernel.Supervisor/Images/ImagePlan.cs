namespace UmlMicro.Supervisor.Images;

/// <summary>One layer to apply: how to open its bytes, and the digests they must have.</summary>
/// <param name="Size">The size its descriptor gives, or -1 when none does.</param>
/// <param name="Blob">The digest of its bytes as stored (an OCI descriptor's).</param>
/// <param name="Content">The digest of its uncompressed tar (a Docker config's diff_id).</param>
internal sealed record Layer(string Name, Func<Stream?> Open, long Size, Digest? Blob, Digest? Content);

/// <summary>What an image is made of: its layers, bottom first, its config, and the cache key of its root.</summary>
internal sealed record ImagePlan(IReadOnlyList<Layer> Layers, ImageConfig Config, string Key);
