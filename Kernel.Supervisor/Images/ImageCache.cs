using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace UmlMicro.Supervisor.Images;

/// <summary>
/// The cache of unpacked images, under the user's cache directory:
/// <c>images/roots/KEY/</c> is an image's root, complete: it is renamed there whole from <c>images/tmp/</c>, where
/// each unpack builds in a directory of its own beside a lock file its process holds (so a later run tells an
/// interrupted unpack, whose lock is free, from one still going); <c>images/files/ID.json</c> remembers which root an
/// image file gave and its config, by the file's device, inode, size and mtime, so that a second run neither
/// hashes nor reads the file again.
/// </summary>
internal sealed class ImageCache(string directory)
{
    private string Roots => Path.Join(directory, "images", "roots");
    private string Temp => Path.Join(directory, "images", "tmp");
    private string Files => Path.Join(directory, "images", "files");

    /// <summary>
    /// The key of the root that <paramref name="layers"/> (their digests, bottom first) make; the version of the
    /// unpacking rules is part of it, so a change to them unpacks anew.
    /// </summary>
    public static string Key(IEnumerable<string> layers) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join('\n', layers.Prepend("umlmicro image root 1")))));

    public string? Find(string key)
    {
        string root = Path.Join(Roots, key);
        return Directory.Exists(root) ? root : null;
    }

    /// <summary>The image a file with this identity gave before, when its root is still in the cache.</summary>
    public Image? Recall(FileIdentity file)
    {
        try
        {
            var memo = JsonSerializer.Deserialize(File.ReadAllBytes(MemoPath(file)), ImageJson.Default.Memo);
            return memo is { Root.Length: 64 } && memo.Root.All(char.IsAsciiHexDigitLower) && Find(memo.Root) is { } root
                ? new Image(root, memo.Config ?? ImageConfig.None, Unpacked: false)
                : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
        {
            return null; // none yet, or unreadable: the file is read again
        }
    }

    public void Remember(FileIdentity file, Image image)
    {
        Directory.CreateDirectory(Files);
        string path = MemoPath(file), temp = $"{path}.{Environment.ProcessId}";
        File.WriteAllBytes(temp, JsonSerializer.SerializeToUtf8Bytes(new Memo(Path.GetFileName(image.Root), image.Config), ImageJson.Default.Memo));
        File.Move(temp, path, overwrite: true);
    }

    private string MemoPath(FileIdentity file) => Path.Join(Files, $"{file}.json");

    public Unpack Begin()
    {
        Directory.CreateDirectory(Temp);
        Directory.CreateDirectory(Roots);
        return new Unpack(this);
    }

    /// <summary>Removes the unpacks that earlier runs left half done (interrupted, or killed).</summary>
    public void RemoveStale()
    {
        if (!Directory.Exists(Temp)) return;
        foreach (var stale in Directory.GetDirectories(Temp))
        {
            try
            {
                // Taken only when no process holds it: that unpack is over. (OpenOrCreate: a directory whose lock file
                // is gone is no one's either. Lock files alone are left: one could be an unpack's that has not made
                // its directory yet.)
                using var free = new FileStream($"{stale}.lock", FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
                Nodes.DeleteTree(stale);
                File.Delete($"{stale}.lock");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // another process is unpacking there (or it cannot be removed now: a later run tries again)
            }
        }
    }

    /// <summary>
    /// One unpack's directory in images/tmp: <see cref="Root"/> is built there and renamed into images/roots by
    /// <see cref="Commit"/>; disposing removes what is left, a half-built root included.
    /// </summary>
    internal sealed class Unpack : IDisposable
    {
        private readonly ImageCache cache;
        private readonly string directory;
        private readonly FileStream lockFile;

        public Unpack(ImageCache cache)
        {
            this.cache = cache;
            string name = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
            directory = Path.Join(cache.Temp, name);
            // The lock first: a directory in tmp/ whose lock is free is an interrupted unpack's (FileShare.None is flock).
            lockFile = new FileStream($"{directory}.lock", FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None);
            Directory.CreateDirectory(Root);
        }

        public string Root => Path.Join(directory, "root");

        /// <summary>A path for a file of this unpack's own (a decompressed archive).</summary>
        public string Scratch(string name) => Path.Join(directory, name);

        /// <summary>Puts the finished root in place as KEY; when another process put one there first, that one stays.</summary>
        public string Commit(string key)
        {
            string root = Path.Join(cache.Roots, key);
            try
            {
                Directory.Move(Root, root);
            }
            catch (IOException) when (Directory.Exists(root))
            {
            }
            return root;
        }

        public void Dispose()
        {
            try
            {
                if (Directory.Exists(directory)) Nodes.DeleteTree(directory);
                File.Delete(lockFile.Name);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // left for a later run's RemoveStale
            }
            lockFile.Dispose();
        }
    }
}
