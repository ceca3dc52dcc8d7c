namespace UmlMicro.Supervisor.Images;

/// <summary>
/// What an image's config says about running it (the "config" object of an OCI or Docker image config, with its
/// names): each part is absent when the image does not say, and a plain root filesystem tarball says nothing.
/// </summary>
internal sealed record ImageConfig(
    IReadOnlyList<string>? Env = null,
    string? WorkingDir = null,
    IReadOnlyList<string>? Entrypoint = null,
    IReadOnlyList<string>? Cmd = null,
    string? User = null)
{
    public static readonly ImageConfig None = new();
}

/// <summary>An image made ready: its unpacked root (inside the cache, used read-only) and its config.</summary>
/// <param name="Unpacked">Whether this call unpacked it (false when the cache had it already).</param>
internal sealed record Image(string Root, ImageConfig Config, bool Unpacked);

/// <summary>Why an image is refused, in a few words; <see cref="ImageStore"/> names the image before them.</summary>
internal sealed class ImageRefused(string problem) : Exception(problem);
