using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using UmlMicro.Supervisor.Cli;
using UmlMicro.Supervisor.Images;

namespace UmlMicro.Tests.Unit;

/// <summary>
/// The image store behind --image: what it unpacks from each kind of image, that it unpacks once, and that a
/// hostile archive is refused with one line, leaving nothing outside the cache (a sentinel directory beside it
/// stays as it was) and no half root in the cache.
/// </summary>
public sealed class ImageStoreTests : IDisposable
{
    private readonly TempDir dir = new();
    private readonly string cache, outside;

    public ImageStoreTests()
    {
        cache = dir.MakeDir("cache");
        outside = dir.MakeDir("outside");
        File.WriteAllText(Path.Join(outside, "secret"), "untouched\n");
    }

    public void Dispose() => dir.Dispose();

    private static readonly DateTimeOffset Time = new(2020, 1, 2, 3, 4, 5, TimeSpan.Zero);

    private static UnixFileMode Mode(string octal) => (UnixFileMode)Convert.ToInt32(octal, 8);

    /// <summary>Builds a tar in memory; hostile names go in as they are (TarWriter checks none).</summary>
    private sealed class TarBuilder
    {
        private readonly MemoryStream bytes = new();
        private readonly TarWriter writer;
        private readonly TarEntryFormat format;

        public TarBuilder(TarEntryFormat format = TarEntryFormat.Pax)
        {
            this.format = format;
            writer = new TarWriter(bytes, format, leaveOpen: true);
        }

        private TarBuilder Add(TarEntryType type, string name, string mode, Action<PosixTarEntry>? set = null)
        {
            PosixTarEntry entry = format == TarEntryFormat.Ustar ? new UstarTarEntry(type, name) : new PaxTarEntry(type, name);
            entry.Mode = Mode(mode);
            entry.ModificationTime = Time;
            set?.Invoke(entry);
            writer.WriteEntry(entry);
            return this;
        }

        public TarBuilder Dir(string name, string mode = "755") => Add(TarEntryType.Directory, name, mode);

        public TarBuilder File(string name, string content, string mode = "644", int uid = 0, int gid = 0, DateTimeOffset? time = null) =>
            Add(TarEntryType.RegularFile, name, mode, e =>
            {
                e.DataStream = new MemoryStream(Encoding.UTF8.GetBytes(content));
                e.Uid = uid;
                e.Gid = gid;
                e.ModificationTime = time ?? Time;
            });

        public TarBuilder Symlink(string name, string target) => Add(TarEntryType.SymbolicLink, name, "777", e => e.LinkName = target);
        public TarBuilder HardLink(string name, string target) => Add(TarEntryType.HardLink, name, "644", e => e.LinkName = target);
        public TarBuilder Fifo(string name) => Add(TarEntryType.Fifo, name, "600");
        public TarBuilder Device(string name, TarEntryType type = TarEntryType.CharacterDevice) =>
            Add(type, name, "666", e => { e.DeviceMajor = 1; e.DeviceMinor = 3; });

        /// <summary>dev/ as mmdebstrap makes it: device nodes and symlinks into /proc.</summary>
        public TarBuilder Dev() => Dir("./dev/").Device("./dev/null").Device("./dev/zero").Symlink("./dev/fd", "/proc/self/fd");

        public byte[] Bytes()
        {
            writer.Dispose();
            return bytes.ToArray();
        }
    }

    private static byte[] Gzip(byte[] data)
    {
        var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true)) gzip.Write(data);
        return output.ToArray();
    }

    private static byte[] Zstd(byte[] data)
    {
        var output = new MemoryStream();
        using (var zstd = new SharpCompress.Compressors.ZStandard.CompressionStream(output, 3, 0, true)) zstd.Write(data);
        return output.ToArray();
    }

    /// <summary>etc/debian_version "13.1\n" in a ustar archive, compressed by xz 5 (made once: .NET writes no xz).</summary>
    private static readonly byte[] XzFixture = Convert.FromBase64String(
        "/Td6WFoAAATm1rRGAgAhARwAAAAQz1jM4Cf/AItdADKdCIYQ5JSzSsi80f5CS2Mz1B2KueR4WCTeThXHPqyfOhHG2OTzhMHNesWTPO6mWpARuATCwNzD4oZ0bJMGW7ALwetYWDAP/DPt9xJ0nLXXC7XKugptrDnQavMfBHre9Mjv5FaOHaxpe/PxukWUMzlllUnKseel6NbG0haFjfI3OxvR1+CsC2Q7mAAAALExNNL2Cb0LAAGnAYBQAACwRMl7scRn+wIAAAAABFla");

    private static byte[] RootFs() => new TarBuilder()
        .Dir("./")
        .Dev()
        .Dir("./etc/")
        .File("./etc/debian_version", "13.1\n")
        .File("./etc/shadow", "root:*:1::::::\n", "640", 0, 42)
        .Dir("./usr/")
        .Dir("./usr/bin/")
        .File("./usr/bin/tool", "#!/bin/sh\n", "4755")
        .HardLink("./usr/bin/tool2", "./usr/bin/tool")
        .Symlink("./bin", "usr/bin")
        .Symlink("./etc/mtab", "/proc/self/mounts")
        .Dir("./tmp/", "1777")
        .Dir("./proc/", "555")
        .Fifo("./run/initctl")
        .File("./home/u/owned", "x", "600", 1234, 1235)
        .File("./etc/old", "x", time: Old)
        .Bytes();

    private static readonly DateTimeOffset Old = new DateTimeOffset(1970, 1, 1, 0, 0, 0, TimeSpan.Zero).AddTicks(-2_500_000); // -0.25 s

    private string Write(string name, byte[] content)
    {
        string path = dir.File(name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, content);
        return path;
    }

    private Image Open(string path, TextWriter? progress = null) => ImageStore.Open(path, cache, progress);

    private static string Stat(string format, string path)
    {
        var stat = Process.Start(new ProcessStartInfo("stat", ["-c", format, path]) { RedirectStandardOutput = true })!;
        string output = stat.StandardOutput.ReadToEnd().Trim();
        stat.WaitForExit();
        return output;
    }

    private static string Read(Image image, string path) => File.ReadAllText(Path.Join(image.Root, path));

    [Fact]
    public void A_rootfs_tarball_is_unpacked_with_its_kinds_of_file_modes_times_and_owners()
    {
        var image = Open(Write("rootfs.tar", RootFs()));

        Assert.True(image.Unpacked);
        Assert.StartsWith(Path.Join(cache, "images", "roots") + "/", image.Root);
        Assert.Equal(ImageConfig.None, image.Config);
        Assert.Equal("13.1\n", Read(image, "etc/debian_version"));
        string root = image.Root;
        Assert.Equal("usr/bin", new FileInfo(Path.Join(root, "bin")).LinkTarget);
        Assert.Equal("/proc/self/mounts", new FileInfo(Path.Join(root, "etc/mtab")).LinkTarget);
        Assert.Equal(Mode("4755"), File.GetUnixFileMode(Path.Join(root, "usr/bin/tool")));
        Assert.Equal("2", Stat("%h", Path.Join(root, "usr/bin/tool2"))); // a hard link, not a copy
        Assert.Equal(Mode("1777"), File.GetUnixFileMode(Path.Join(root, "tmp")));
        Assert.Equal(Mode("555"), File.GetUnixFileMode(Path.Join(root, "proc")));
        Assert.Equal(Mode("755"), File.GetUnixFileMode(Path.Join(root, "run"))); // made for the fifo, never listed
        Assert.Equal("fifo", Stat("%F", Path.Join(root, "run/initctl")));
        Assert.Equal(Time, File.GetLastWriteTimeUtc(Path.Join(root, "etc/debian_version")));
        Assert.Equal(Time, File.GetLastWriteTimeUtc(Path.Join(root, "etc")));
        Assert.Equal(Old, File.GetLastWriteTimeUtc(Path.Join(root, "etc/old")));
        // device nodes beneath dev/ are skipped: the guest's /dev is the kernel's
        Assert.True(Directory.Exists(Path.Join(root, "dev")));
        Assert.False(File.Exists(Path.Join(root, "dev/null")));
        string owner = Nodes.IsRoot ? "1234:1235" : Stat("%u:%g", dir.Path); // else the user's
        Assert.Equal(owner, Stat("%u:%g", Path.Join(root, "home/u/owned")));
    }

    public static TheoryData<string> Compressions => ["gz", "zst", "xz"];

    [Theory]
    [MemberData(nameof(Compressions))]
    public void A_compressed_rootfs_tarball_is_told_by_its_content_not_its_name(string compression)
    {
        byte[] content = compression switch
        {
            "gz" => Gzip(RootFs()),
            "zst" => Zstd(RootFs()),
            _ => XzFixture,
        };
        var image = Open(Write($"rootfs-{compression}.img", content));
        Assert.Equal("13.1\n", Read(image, "etc/debian_version"));
    }

    [Fact]
    public void A_second_open_of_a_tarball_does_not_unpack_it_again()
    {
        string path = Write("rootfs.tar", RootFs());
        var progress = new StringWriter();
        var first = Open(path, progress);
        Assert.Contains("unpacking rootfs.tar", progress.ToString());
        Assert.EndsWith("\r\u001b[K", progress.ToString()); // the line is cleared at the end

        var again = new StringWriter();
        var second = Open(path, again);
        Assert.False(second.Unpacked);
        Assert.Equal(first.Root, second.Root);
        Assert.Equal("", again.ToString());
        Assert.Single(Directory.GetDirectories(Path.Join(cache, "images", "roots")));

        // a changed file is another image
        File.WriteAllBytes(path, Gzip(RootFs()));
        Assert.True(Open(path).Unpacked);
    }

    // ---- OCI

    private sealed record Blob(string Digest, long Size);

    private static Blob Put(string layout, byte[] content)
    {
        string hex = Convert.ToHexStringLower(SHA256.HashData(content));
        Directory.CreateDirectory(Path.Join(layout, "blobs", "sha256"));
        File.WriteAllBytes(Path.Join(layout, "blobs", "sha256", hex), content);
        return new Blob($"sha256:{hex}", content.Length);
    }

    private static byte[] Json(object value) => JsonSerializer.SerializeToUtf8Bytes(value);

    private static byte[] Layer1() => new TarBuilder()
        .Dir("etc/")
        .File("etc/a", "a\n")
        .File("etc/b", "b\n")
        .Dir("opt/")
        .Dir("opt/d/")
        .File("opt/d/x", "x\n")
        .Dir("opt/d/sub/")
        .File("opt/d/sub/y", "y\n")
        .File("etc/debian_version", "13.1\n")
        .Bytes();

    private static byte[] Layer2() => new TarBuilder()
        .File("etc/.wh.a", "")
        .Dir("opt/d/")
        .File("opt/d/z", "z\n")
        .File("opt/d/.wh..wh..opq", "")
        .File("etc/c", "c\n")
        .Bytes();

    private static readonly object Config = new
    {
        architecture = "amd64",
        os = "linux",
        config = new
        {
            Env = new[] { "PATH=/usr/local/bin:/usr/bin", "LANG=C.UTF-8" },
            WorkingDir = "/srv",
            Entrypoint = new[] { "/usr/bin/tini", "--" },
            Cmd = new[] { "sh", "-c", "echo hi" },
            User = "daemon:adm",
        },
        rootfs = new { type = "layers", diff_ids = Array.Empty<string>() },
    };

    /// <summary>An OCI layout of two layers, the second whiting out etc/a and making opt/d opaque.</summary>
    private string Layout(string name = "layout", string layerType = "application/vnd.oci.image.layer.v1.tar+gzip",
        byte[]? config = null, bool nested = false)
    {
        string layout = dir.MakeDir(name);
        File.WriteAllText(Path.Join(layout, "oci-layout"), """{"imageLayoutVersion":"1.0.0"}""");
        var layers = new[] { Put(layout, Gzip(Layer1())), Put(layout, Zstd(Layer2())) };
        var configBlob = Put(layout, config ?? Json(Config));
        var manifest = Put(layout, Json(new
        {
            schemaVersion = 2,
            mediaType = "application/vnd.oci.image.manifest.v1+json",
            config = new { mediaType = "application/vnd.oci.image.config.v1+json", digest = configBlob.Digest, size = configBlob.Size },
            layers = layers.Select((l, i) => new { mediaType = i == 0 ? layerType : "application/vnd.oci.image.layer.v1.tar+zstd", digest = l.Digest, size = l.Size }),
        }));
        object entry = new { mediaType = "application/vnd.oci.image.manifest.v1+json", digest = manifest.Digest, size = manifest.Size };
        if (nested)
        {
            var other = Put(layout, Json(new { schemaVersion = 2 })); // never read: it is arm64's
            var inner = Put(layout, Json(new
            {
                schemaVersion = 2,
                mediaType = "application/vnd.oci.image.index.v1+json",
                manifests = new object[]
                {
                    new { mediaType = "application/vnd.oci.image.manifest.v1+json", digest = other.Digest, size = other.Size, platform = new { architecture = "arm64", os = "linux" } },
                    new { mediaType = "application/vnd.oci.image.manifest.v1+json", digest = manifest.Digest, size = manifest.Size, platform = new { architecture = "amd64", os = "linux" } },
                },
            }));
            entry = new { mediaType = "application/vnd.oci.image.index.v1+json", digest = inner.Digest, size = inner.Size };
        }
        File.WriteAllBytes(Path.Join(layout, "index.json"), Json(new { schemaVersion = 2, manifests = new[] { entry } }));
        return layout;
    }

    private string Archive(string layout, string name)
    {
        string path = dir.File(name);
        TarFile.CreateFromDirectory(layout, path, includeBaseDirectory: false);
        return path;
    }

    private static string Listing(string root) => string.Join(' ',
        Directory.GetFileSystemEntries(root, "*", SearchOption.AllDirectories).Select(p => Path.GetRelativePath(root, p)).Order(StringComparer.Ordinal));

    private static void AssertLayered(Image image)
    {
        // etc/a whited out, opt/d opaque: only the second layer's z is left there
        Assert.Equal("etc etc/b etc/c etc/debian_version opt opt/d opt/d/z", Listing(image.Root));
        Assert.Equal("13.1\n", Read(image, "etc/debian_version"));
        var config = image.Config;
        Assert.Equal(["PATH=/usr/local/bin:/usr/bin", "LANG=C.UTF-8"], config.Env);
        Assert.Equal("/srv", config.WorkingDir);
        Assert.Equal(["/usr/bin/tini", "--"], config.Entrypoint);
        Assert.Equal(["sh", "-c", "echo hi"], config.Cmd);
        Assert.Equal("daemon:adm", config.User);
    }

    [Fact]
    public void An_oci_layout_directory_gives_its_layers_whiteouts_honoured_and_its_config()
    {
        var image = Open(Layout());
        Assert.True(image.Unpacked);
        AssertLayered(image);
    }

    [Fact]
    public void An_oci_archive_gives_the_same_root_as_its_layout_directory()
    {
        string layout = Layout();
        string archive = Archive(layout, "image.oci.tar");
        var fromArchive = Open(archive);
        Assert.True(fromArchive.Unpacked);
        AssertLayered(fromArchive);
        // the same layers make the same root: the directory finds it in the cache
        var fromLayout = Open(layout);
        Assert.False(fromLayout.Unpacked);
        Assert.Equal(fromArchive.Root, fromLayout.Root);

        // compressed, it is the same image too
        string compressed = Write("image.oci.tar.gz", Gzip(File.ReadAllBytes(archive)));
        var fromCompressed = Open(compressed);
        Assert.False(fromCompressed.Unpacked);
        AssertLayered(fromCompressed);
        Assert.Empty(Directory.GetFileSystemEntries(Path.Join(cache, "images", "tmp")));
    }

    [Fact]
    public void A_second_open_of_a_layout_reads_no_layer()
    {
        string layout = Layout();
        var first = Open(layout);
        // the layers could not be applied now: the cache must not need them
        foreach (var blob in Directory.GetFiles(Path.Join(layout, "blobs", "sha256")).Where(f => new FileInfo(f).Length > 200 && !IsJson(f)))
            File.Delete(blob);
        var second = Open(layout);
        Assert.False(second.Unpacked);
        Assert.Equal(first.Root, second.Root);
        AssertLayered(second);
    }

    private static bool IsJson(string path) => File.ReadAllBytes(path) is [(byte)'{', ..];

    [Fact]
    public void A_nested_index_leads_to_the_linux_amd64_image()
    {
        AssertLayered(Open(Layout(nested: true)));
    }

    /// <summary>A docker-save archive as Docker before 25 wrote it, of the same two layers.</summary>
    private string DockerSave(string name, bool wrongDiffId = false)
    {
        string save = dir.MakeDir(name);
        byte[] layer1 = Layer1(), layer2 = Layer2();
        static string Sha(byte[] b) => Convert.ToHexStringLower(SHA256.HashData(b));
        byte[] config = Json(new
        {
            architecture = "amd64",
            os = "linux",
            config = new { Env = new[] { "A=1" }, Cmd = new[] { "/bin/sh" } },
            rootfs = new { type = "layers", diff_ids = new[] { $"sha256:{Sha(layer1)}", $"sha256:{Sha(wrongDiffId ? layer1 : layer2)}" } },
        });
        File.WriteAllBytes(Path.Join(save, $"{Sha(config)}.json"), config);
        // layer directories are named by a digest of Docker's own (not the layer's)
        string l1 = Sha([1]), l2 = Sha([2]);
        Directory.CreateDirectory(Path.Join(save, l1));
        Directory.CreateDirectory(Path.Join(save, l2));
        File.WriteAllBytes(Path.Join(save, l1, "layer.tar"), layer1);
        File.WriteAllBytes(Path.Join(save, l2, "layer.tar"), Gzip(layer2));
        File.WriteAllBytes(Path.Join(save, "manifest.json"), Json(new[] { new { Config = $"{Sha(config)}.json", RepoTags = new[] { "x:latest" }, Layers = new[] { $"{l1}/layer.tar", $"{l2}/layer.tar" } } }));
        return Archive(save, $"{name}.tar");
    }

    [Fact]
    public void A_docker_save_archive_is_read_through_its_manifest_json()
    {
        var image = Open(DockerSave("save"));
        Assert.Equal("etc etc/b etc/c etc/debian_version opt opt/d opt/d/z", Listing(image.Root));
        Assert.Equal(["A=1"], image.Config.Env);
        Assert.Equal(["/bin/sh"], image.Config.Cmd);
        Assert.Null(image.Config.Entrypoint);
    }

    [Fact]
    public void A_docker_save_layer_that_is_not_its_diff_id_is_refused() =>
        AssertRefused(DockerSave("bad-save", wrongDiffId: true), "layer 2/2's content has digest");

    // ---- refusals

    /// <summary>Opens a hostile image: one line, and nothing outside the cache, nor a root or temp dir in it.</summary>
    private void AssertRefused(string path, string problem)
    {
        string before = Listing(outside);
        var error = Assert.Throws<UsageError>(() => Open(path));
        Assert.StartsWith($"image {path}: ", error.Message);
        Assert.True(error.Message.Contains(problem, StringComparison.Ordinal), $"'{problem}' is not in: {error.Message}");
        Assert.DoesNotContain('\n', error.Message);
        Assert.Equal(before, Listing(outside));
        Assert.Equal("untouched\n", File.ReadAllText(Path.Join(outside, "secret")));
        Assert.Equal("cache outside", string.Join(' ', Directory.GetFileSystemEntries(dir.Path).Select(Path.GetFileName).Where(n => n is "cache" or "outside").Order()));
        Assert.Empty(Entries(Path.Join(cache, "images", "roots")));
        Assert.Empty(Entries(Path.Join(cache, "images", "tmp")));
    }

    private static string[] Entries(string directory) => Directory.Exists(directory) ? Directory.GetFileSystemEntries(directory) : [];

    private string Hostile(TarBuilder tar) => Write($"hostile-{Guid.NewGuid():N}.tar", tar.Bytes());

    private TarBuilder Base() => new TarBuilder().Dir("etc/").File("etc/debian_version", "13.1\n");

    [Fact]
    public void An_absolute_entry_is_refused() =>
        AssertRefused(Hostile(Base().File(Path.Join(outside, "pwned"), "x")), "has an absolute path");

    [Fact]
    public void A_dotdot_entry_is_refused() =>
        AssertRefused(Hostile(Base().File("etc/../../../../../outside/pwned", "x")), "has a '..' component");

    [Fact]
    public void An_entry_through_an_absolute_symlink_is_refused() =>
        AssertRefused(Hostile(Base().Symlink("escape", outside).File("escape/pwned", "x")), "goes through the symlink escape");

    [Fact]
    public void An_entry_through_a_symlinked_parent_is_refused() =>
        AssertRefused(Hostile(Base().Symlink("etc2", "/").File("etc2/passwd", "x")), "goes through the symlink etc2");

    [Fact]
    public void A_directory_entry_through_a_relative_symlink_is_refused() =>
        AssertRefused(Hostile(Base().Symlink("up", "../../../../../..").Dir("up/outside/new/")), "goes through the symlink up");

    [Fact]
    public void A_hard_link_out_of_the_tree_is_refused()
    {
        AssertRefused(Hostile(Base().HardLink("etc/passwd", "/etc/passwd")), "has an absolute path");
        AssertRefused(Hostile(Base().HardLink("etc/secret", "../outside/secret")), "has a '..' component");
    }

    [Fact]
    public void A_hard_link_to_what_is_not_unpacked_yet_or_a_directory_is_refused()
    {
        AssertRefused(Hostile(Base().HardLink("etc/early", "etc/later").File("etc/later", "x")), "names no file unpacked before it");
        AssertRefused(Hostile(Base().HardLink("etc/dir", "etc")), "names no file unpacked before it");
        AssertRefused(Hostile(Base().Symlink("escape", outside).HardLink("etc/secret", "escape/secret")), "goes through the symlink escape");
    }

    [Fact]
    public void A_device_node_outside_dev_is_refused()
    {
        AssertRefused(Hostile(Base().Device("etc/null")), "is a device node");
        AssertRefused(Hostile(Base().Device("sda", TarEntryType.BlockDevice)), "is a device node");
        // the name is the archive's: printed on one line all the same
        AssertRefused(Hostile(new TarBuilder(TarEntryFormat.Ustar).Device("etc/two\nlines")), "entry etc/two?lines is a device node");
    }

    [Fact]
    public void A_truncated_archive_is_refused()
    {
        byte[] whole = Base().File("etc/big", new string('x', 5000)).Bytes();
        AssertRefused(Write("cut-in-member.tar", whole[..(whole.Length - 4096)]), "truncated");
        // cut where a header would start: the end-of-archive blocks are missing
        AssertRefused(Write("cut-at-header.tar", whole[..(whole.Length - 1024)]), "truncated");
        byte[] gzip = Gzip(whole);
        AssertRefused(Write("cut.tar.gz", gzip[..(gzip.Length / 2)]), "truncated");
    }

    [Fact]
    public void What_is_not_a_tar_is_refused()
    {
        AssertRefused(Write("notes.txt", Encoding.UTF8.GetBytes(new string('x', 3000))), "not a tar archive");
        AssertRefused(Write("empty.tar", []), "an empty archive");
    }

    [Fact]
    public void A_whiteout_through_a_symlink_is_refused_and_removes_nothing()
    {
        string layout = dir.MakeDir("evil-layout");
        File.WriteAllText(Path.Join(layout, "oci-layout"), """{"imageLayoutVersion":"1.0.0"}""");
        var layers = new[] { Put(layout, new TarBuilder().Symlink("lnk", outside).Bytes()), Put(layout, new TarBuilder().File("lnk/.wh.secret", "").Bytes()) };
        var config = Put(layout, Json(Config));
        var manifest = Put(layout, Json(new
        {
            schemaVersion = 2,
            config = new { mediaType = "application/vnd.oci.image.config.v1+json", digest = config.Digest, size = config.Size },
            layers = layers.Select(l => new { mediaType = "application/vnd.oci.image.layer.v1.tar", digest = l.Digest, size = l.Size }),
        }));
        File.WriteAllBytes(Path.Join(layout, "index.json"), Json(new { schemaVersion = 2, manifests = new[] { new { mediaType = "application/vnd.oci.image.manifest.v1+json", digest = manifest.Digest, size = manifest.Size } } }));
        AssertRefused(layout, "goes through the symlink lnk");
    }

    private static string BlobOf(string layout, int layer)
    {
        var index = JsonDocument.Parse(File.ReadAllBytes(Path.Join(layout, "index.json")));
        string manifest = index.RootElement.GetProperty("manifests")[0].GetProperty("digest").GetString()!;
        var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Join(layout, "blobs", "sha256", manifest[7..])));
        var element = layer < 0 ? doc.RootElement.GetProperty("config") : doc.RootElement.GetProperty("layers")[layer];
        return Path.Join(layout, "blobs", "sha256", element.GetProperty("digest").GetString()![7..]);
    }

    [Fact]
    public void A_blob_with_another_digest_is_refused()
    {
        string layout = Layout();
        string blob = BlobOf(layout, 1);
        File.WriteAllBytes(blob, Zstd(new TarBuilder().File("etc/evil", "x").Bytes()));
        AssertRefused(layout, "has digest");
    }

    [Fact]
    public void A_missing_blob_is_refused()
    {
        string layout = Layout();
        File.Delete(BlobOf(layout, 0));
        AssertRefused(layout, "is missing");
    }

    [Fact]
    public void An_unknown_layer_media_type_is_refused() =>
        AssertRefused(Layout(layerType: "application/vnd.oci.image.layer.v1.tar+bzip2"), "unknown media type");

    [Fact]
    public void A_config_that_is_not_json_is_refused() =>
        AssertRefused(Layout(config: "{\"config\": ["u8.ToArray()), "the config is not valid JSON");

    [Fact]
    public void A_digest_that_is_not_one_is_refused()
    {
        string layout = Layout();
        string index = File.ReadAllText(Path.Join(layout, "index.json"));
        File.WriteAllText(Path.Join(layout, "index.json"), System.Text.RegularExpressions.Regex.Replace(index, "sha256:[0-9a-f]{64}", "sha256:../../../outside/secret"));
        AssertRefused(layout, "no valid sha256 or sha512 digest");
    }

    [Fact]
    public void A_hostile_oci_archive_is_refused_as_its_layout_would_be()
    {
        string layout = Layout();
        string blob = BlobOf(layout, 0);
        File.WriteAllBytes(blob, Gzip(new TarBuilder().File("/etc/x", "x").Bytes()));
        AssertRefused(Archive(layout, "hostile.oci.tar"), "entry /etc/x has an absolute path");
        AssertRefused(Write("dotdot.oci.tar", new TarBuilder().File("oci-layout", "{}").File("../outside/pwned", "x").Bytes()), "has a '..' component");
    }

    // ---- the cache's temp directories

    [Fact]
    public void An_interrupted_unpack_is_removed_and_one_in_progress_is_left_alone()
    {
        string temp = Directory.CreateDirectory(Path.Join(cache, "images", "tmp")).FullName;
        string stale = Directory.CreateDirectory(Path.Join(temp, "dead", "root", "etc")).Parent!.Parent!.FullName;
        File.WriteAllText(Path.Join(temp, "dead.lock"), "");
        File.SetUnixFileMode(Path.Join(stale, "root"), Mode("555")); // as a root whose modes were set
        string busy = Directory.CreateDirectory(Path.Join(temp, "busy", "root")).Parent!.FullName;
        using var held = new FileStream(Path.Join(temp, "busy.lock"), FileMode.Create, FileAccess.ReadWrite, FileShare.None);

        Open(Write("rootfs.tar", RootFs()));

        Assert.False(Directory.Exists(stale));
        Assert.True(Directory.Exists(busy));
    }

    // ---- the image's user (GuestUserTests has the rules)

    [Fact]
    public void The_user_is_resolved_in_the_unpacked_root()
    {
        const string passwd = "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n";
        const string group = "root:x:0:\ndaemon:x:1:\nadm:x:4:syslog\n";
        var image = Open(Write("users.tar", new TarBuilder().Dir("etc/").File("etc/passwd", passwd).File("etc/group", group).Bytes()));
        var user = UmlMicro.Supervisor.Cli.GuestUser.Resolve("daemon:adm", image.Root);
        Assert.Equal((1u, 4u, "/usr/sbin"), (user.Uid, user.Gid, user.Home));
    }
}
