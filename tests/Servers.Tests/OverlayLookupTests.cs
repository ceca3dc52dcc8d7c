using UmlMicro.Servers.Vfs.Layers;
using UmlMicro.Servers.Vfs.Native;

namespace UmlMicro.ServersTests;

/// <summary>
/// A walk looks a name up knowing the directory it found just above it, so that the overlay can leave out the probe
/// of a layer that directory is not in. That must never change an answer: over a tree with every mix of layers
/// (lower only, upper only, both, a file over a directory and a directory over a file, whiteouts, opaque directories, hidden names, symlinks),
/// the lookup of each name below each directory gives exactly what a lookup without the parent gives.
/// </summary>
public sealed class OverlayLookupTests : IDisposable
{
    private readonly string _base = Directory.CreateTempSubdirectory("umlmicro-vfs-lookup-").FullName;

    private string Lower => Path.Combine(_base, "lower");
    private string Upper => Path.Combine(_base, "upper");

    public void Dispose() => Directory.Delete(_base, recursive: true);

    [Fact]
    public void A_name_below_a_walked_directory_is_what_a_lookup_without_it_says()
    {
        foreach (var dir in new[] { "both/sub", "both/lower-only", "lower-only/sub", "shadowed/sub", "opaque/sub", "whited/sub", "file-over-dir/sub", "kernel/state" })
            Directory.CreateDirectory(Path.Combine(Lower, dir));
        foreach (var dir in new[] { "both/sub", "both/upper-only/sub", "upper-only/sub", "opaque/sub", "dir-over-file" })
            Directory.CreateDirectory(Path.Combine(Upper, dir));
        foreach (var file in new[] { "both/f", "both/sub/f", "both/lower-only/f", "lower-only/f", "lower-only/sub/f", "shadowed/f", "shadowed/gone", "opaque/f", "opaque/sub/f", "whited/sub/f", "file-over-dir/sub/f", "dir-over-file" })
            File.WriteAllText(Path.Combine(Lower, file), file);
        foreach (var file in new[] { "both/g", "both/sub/g", "both/upper-only/g", "upper-only/g", "upper-only/sub/g", "opaque/g", "file-over-dir", "dir-over-file/x" })
            File.WriteAllText(Path.Combine(Upper, file), file);
        File.CreateSymbolicLink(Path.Combine(Lower, "both/link"), "sub");
        File.CreateSymbolicLink(Path.Combine(Upper, "upper-only/link"), "../both");
        string journal = Path.Combine(_base, "journal");
        File.WriteAllLines(journal, ["W shadowed/gone", "W whited", "O opaque", "W both/sub/f"]);
        var overlay = new OverlayMount("/", Lower, Upper, journal, [Path.Combine(Lower, "kernel/state")]);

        var rels = Tree(Lower).Union(Tree(Upper)).SelectMany(r => new[] { r, Mount.Child(r, "missing") }).Distinct().Order(StringComparer.Ordinal).ToList();
        int compared = 0;
        foreach (var rel in rels.Where(r => r.Length > 0))
        {
            var parent = overlay.Lookup(Mount.Parent(rel));
            if (parent.Type != NodeType.Directory) continue;
            Assert.Equal(overlay.Lookup(rel), overlay.Lookup(rel, parent));
            compared++;
        }
        Assert.True(compared > 40, $"only {compared} names compared");
    }

    /// <summary>Every path under <paramref name="root"/>, relative to it, with "" for the root itself.</summary>
    private static IEnumerable<string> Tree(string root) =>
        new[] { "" }.Concat(Directory.EnumerateFileSystemEntries(root, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 })
            .Select(p => Path.GetRelativePath(root, p)));
}
