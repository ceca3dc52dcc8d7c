using System.Text.Json;
using System.Text.Json.Serialization;

namespace UmlMicro.Supervisor.Images;

// The JSON documents of an OCI layout and of a docker-save archive, only the fields read here.

internal sealed record OciLayoutFile(string? ImageLayoutVersion);

internal sealed record Platform(string? Architecture, string? Os);

internal sealed record Descriptor(string? MediaType, string? Digest, long Size, Platform? Platform = null);

/// <summary>An image index (index.json is one) or a manifest: the media type of the document says which.</summary>
internal sealed record OciDocument(string? MediaType, IReadOnlyList<Descriptor>? Manifests, Descriptor? Config, IReadOnlyList<Descriptor>? Layers);

internal sealed record RootFs([property: JsonPropertyName("diff_ids")] IReadOnlyList<string>? DiffIds);

internal sealed record ConfigFile(string? Architecture, string? Os, ImageConfig? Config, RootFs? Rootfs);

/// <summary>One image of a docker-save archive's manifest.json.</summary>
internal sealed record DockerImage(string? Config, IReadOnlyList<string>? Layers);

/// <summary>What the cache remembers of an image file (see <see cref="ImageCache"/>).</summary>
internal sealed record Memo(string Root, ImageConfig Config);

/// <summary>Generated at compile time: the supervisor is a NativeAOT executable, with no reflection-built serializers.</summary>
[JsonSourceGenerationOptions(PropertyNameCaseInsensitive = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(OciLayoutFile))]
[JsonSerializable(typeof(OciDocument))]
[JsonSerializable(typeof(ConfigFile))]
[JsonSerializable(typeof(IReadOnlyList<DockerImage>))]
[JsonSerializable(typeof(Memo))]
internal sealed partial class ImageJson : JsonSerializerContext
{
    /// <summary>Parses <paramref name="json"/>, refusing what is not valid JSON of that shape as <paramref name="what"/>.</summary>
    public static T Parse<T>(byte[] json, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type, string what)
    {
        try
        {
            return JsonSerializer.Deserialize(json, type) ?? throw new ImageRefused($"{what} is null");
        }
        catch (JsonException)
        {
            throw new ImageRefused($"{what} is not valid JSON");
        }
    }
}
