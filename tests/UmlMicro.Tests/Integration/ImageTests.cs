using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.Json;

namespace UmlMicro.Tests.Integration;

/// <summary>
/// The images of a Debian 13 tree, made by the test as a user makes them offline: a root filesystem tarball (tar of the
/// tree), an OCI layout and an oci-archive written by hand (a gzip layer, a config, a manifest, an index), and an
/// application image that adds a layer and a config on top. Unpacked once into a cache of the fixture's own.
/// </summary>
public sealed class DebianImages : IDisposable
{
    private readonly TempDir _dir = new();
    public string Tree { get; } = DebianTree.Trixie;
    public string Cache => _dir.File("cache");
    public string Tarball => _dir.File("deb13.tar");
    public string Layout => _dir.File("oci");
    public string Archive => _dir.File("deb13-oci.tar");
    public string App => _dir.File("app-oci.tar");

    public DebianImages()
    {
        Run("tar", "--numeric-owner", "-C", Tree, "-cf", Tarball, ".");
        var (baseDigest, baseSize, baseDiff) = Blob(Layout, gz => { using var t = File.OpenRead(Tarball); t.CopyTo(gz); });
        WriteImage(Layout, [(baseDigest, baseSize, baseDiff)], new { Env = new[] { "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" }, Cmd = new[] { "bash" } });
        TarFile.CreateFromDirectory(Layout, Archive, includeBaseDirectory: false);

        // The application: the same base, and a layer with a script that removes (whites out) /etc/debian_version.
        string app = _dir.File("app");
        Directory.CreateDirectory(Path.Combine(app, "blobs", "sha256"));
        File.Copy(Path.Combine(Layout, "blobs", "sha256", baseDigest), Path.Combine(app, "blobs", "sha256", baseDigest));
        var top = Blob(app, gz =>
        {
            using var tar = new TarWriter(gz, TarEntryFormat.Pax, leaveOpen: true);
            tar.WriteEntry(new PaxTarEntry(TarEntryType.Directory, "srv/") { Mode = (UnixFileMode)0b111_101_101 });
            var script = "#!/bin/sh\necho \"$GREETING\"; pwd; id -un; test -e /etc/debian_version || echo whited-out; echo \"$@\"\n"u8.ToArray();
            tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "srv/hello.sh") { Mode = (UnixFileMode)0b111_101_101, DataStream = new MemoryStream(script) });
            tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "etc/.wh.debian_version") { DataStream = new MemoryStream() });
        });
        WriteImage(app, [(baseDigest, baseSize, baseDiff), top], new
        {
            Env = new[] { "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "GREETING=from the image" },
            WorkingDir = "/srv",
            Entrypoint = new[] { "/srv/hello.sh" },
            Cmd = new[] { "default", "args" },
            User = "nobody",
        });
        TarFile.CreateFromDirectory(app, App, includeBaseDirectory: false);
    }

    public void Dispose() => _dir.Dispose();

    /// <summary>A gzip layer written by <paramref name="write"/> into the layout's blobs: its digest, size and diff id.</summary>
    private static (string Digest, long Size, string DiffId) Blob(string layout, Action<Stream> write)
    {
        string blobs = Directory.CreateDirectory(Path.Combine(layout, "blobs", "sha256")).FullName;
        string temp = Path.Combine(blobs, "partial");
        using var diff = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using (var file = File.Create(temp))
        using (var gz = new GZipStream(file, CompressionLevel.Fastest))
        using (var hashing = new HashingStream(gz, diff))
            write(hashing);
        string digest = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(temp)));
        File.Move(temp, Path.Combine(blobs, digest), overwrite: true);
        return (digest, new FileInfo(Path.Combine(blobs, digest)).Length, "sha256:" + Convert.ToHexStringLower(diff.GetHashAndReset()));
    }

    private static void WriteImage(string layout, (string Digest, long Size, string DiffId)[] layers, object config)
    {
        var cfg = Json(layout, new
        {
            architecture = "amd64",
            os = "linux",
            config,
            rootfs = new { type = "layers", diff_ids = layers.Select(l => l.DiffId).ToArray() },
        });
        var manifest = Json(layout, new
        {
            schemaVersion = 2,
            mediaType = "application/vnd.oci.image.manifest.v1+json",
            config = new { mediaType = "application/vnd.oci.image.config.v1+json", digest = "sha256:" + cfg.Digest, size = cfg.Size },
            layers = layers.Select(l => new { mediaType = "application/vnd.oci.image.layer.v1.tar+gzip", digest = "sha256:" + l.Digest, size = l.Size }).ToArray(),
        });
        File.WriteAllText(Path.Combine(layout, "oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");
        File.WriteAllText(Path.Combine(layout, "index.json"), JsonSerializer.Serialize(new
        {
            schemaVersion = 2,
            manifests = new[] { new { mediaType = "application/vnd.oci.image.manifest.v1+json", digest = "sha256:" + manifest.Digest, size = manifest.Size } },
        }));
    }

    private static (string Digest, long Size) Json(string layout, object value)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(value);
        string digest = Convert.ToHexStringLower(SHA256.HashData(bytes));
        File.WriteAllBytes(Path.Combine(layout, "blobs", "sha256", digest), bytes);
        return (digest, bytes.Length);
    }

    private static void Run(string program, params string[] args)
    {
        using var p = Process.Start(new ProcessStartInfo(program, args) { RedirectStandardError = true })!;
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{program} failed: {err}");
    }

    /// <summary>Hashes what passes through to the gzip stream: the layer's uncompressed digest (its diff id).</summary>
    private sealed class HashingStream(Stream inner, IncrementalHash hash) : Stream
    {
        public override void Write(byte[] buffer, int offset, int count)
        {
            hash.AppendData(buffer, offset, count);
            inner.Write(buffer, offset, count);
        }

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}

/// <summary>
/// --image: a root filesystem tarball, an OCI layout and an oci-archive of another distribution run as its own root; an
/// image's config gives the defaults (environment, directory, entrypoint and command, user) and the command line
/// overrides them; a second run finds the image unpacked; a hostile archive is refused with one line.
/// </summary>
public sealed class ImageTests(DebianImages images) : IClassFixture<DebianImages>, IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private RunResult Run(string image, string[] options, params string[] command)
    {
        var spec = new RunSpec(_dir.Path, command.FirstOrDefault() ?? "", command.Skip(1).ToArray())
        {
            Options = ["--image", image, .. options],
            Environment = { ["XDG_CACHE_HOME"] = images.Cache },
            Timeout = TimeSpan.FromMinutes(3),
        };
        return GuestRunner.Run(spec);
    }

    private string Version => File.ReadAllText(Path.Combine(images.Tree, "etc/debian_version")).Trim();

    [Fact]
    public void A_root_filesystem_tarball_runs_as_the_guests_root()
    {
        var r = Run(images.Tarball, [], "/bin/sh", "-c", "cat /etc/debian_version; ldd --version | head -1");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(Version, r.StdoutLines[0]);
        Assert.Contains($"GLIBC {DebianTree.PackageVersion(images.Tree, "libc6")}", r.StdoutLines[1]);
    }

    [Fact]
    public void An_oci_layout_and_an_oci_archive_of_the_same_tree_run_alike()
    {
        foreach (var image in new[] { images.Layout, images.Archive })
        {
            var r = Run(image, [], "cat", "/etc/debian_version");
            Assert.True(r.ExitCode == 0, r.ToString());
            Assert.Equal([Version], r.StdoutLines);
        }
    }

    [Fact]
    public void The_images_config_gives_the_defaults()
    {
        var r = Run(images.App, []);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(["from the image", "/srv", "nobody", "whited-out", "default args"], r.StdoutLines);
    }

    [Fact]
    public void The_command_line_overrides_the_images_config()
    {
        var r = Run(images.App, ["--user", "root", "--workdir", "/tmp", "--env", "GREETING=from the command line"], "mine");
        Assert.True(r.ExitCode == 0, r.ToString());
        // The arguments replace Cmd and go to the Entrypoint, as docker run's do.
        Assert.Equal(["from the command line", "/tmp", "root", "whited-out", "mine"], r.StdoutLines);
    }

    [Fact]
    public void A_second_run_finds_the_image_unpacked()
    {
        Assert.Equal(0, Run(images.Archive, [], "true").ExitCode);
        string roots = Path.Combine(images.Cache, "umlmicro", "images", "roots");
        var before = Directory.GetDirectories(roots).Select(d => (d, new DirectoryInfo(d).CreationTimeUtc)).Order().ToList();
        Assert.Equal(0, Run(images.Archive, [], "true").ExitCode);
        Assert.Equal(before, Directory.GetDirectories(roots).Select(d => (d, new DirectoryInfo(d).CreationTimeUtc)).Order().ToList());
    }

    [Fact]
    public void A_hostile_archive_is_refused_with_one_line_and_nothing_is_written_outside_the_cache()
    {
        string evil = _dir.File("evil.tar");
        using (var tar = new TarWriter(File.Create(evil), TarEntryFormat.Pax))
        {
            tar.WriteEntry(new PaxTarEntry(TarEntryType.Directory, "etc/") { Mode = (UnixFileMode)0b111_101_101 });
            tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "../../escaped") { DataStream = new MemoryStream("x"u8.ToArray()) });
        }
        var r = Run(evil, [], "true");
        Assert.Equal(2, r.ExitCode);
        Assert.Single(r.StderrLines);
        Assert.StartsWith($"umlmicro: image {evil}: ", r.Stderr);
        Assert.False(File.Exists(Path.Combine(images.Cache, "..", "escaped")));
        Assert.False(File.Exists(Path.Combine(images.Cache, "umlmicro", "images", "escaped")));
        Assert.Empty(Directory.GetFileSystemEntries(_dir.Path, "escaped", SearchOption.AllDirectories));
    }
}
