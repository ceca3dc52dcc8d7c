using UmlMicro.Contracts.Linux;
using UmlMicro.Contracts.Servers;
using UmlMicro.Servers.Vfs;

namespace UmlMicro.ServersTests;

/// <summary>
/// A VFS server in process over real temp directories, as --root sets it up: <see cref="LowerDir"/> is the
/// read-only lower layer of the root overlay (tests fill it before the server starts), with /proc and /dev
/// mounted; the state and memory directories are private temp directories, and everything is deleted on dispose.
/// </summary>
internal sealed class VfsHarness : IDisposable
{
    private readonly string _base = Directory.CreateTempSubdirectory("umlmicro-vfs-unit-").FullName;
    private VfsServer? _server;

    public VfsHarness()
    {
        Directory.CreateDirectory(LowerRoot);
        Directory.CreateDirectory(StateDir);
        Directory.CreateDirectory(MemoryDir);
    }

    public string LowerRoot => Path.Combine(_base, "lower");
    public string StateDir => Path.Combine(_base, "state");
    public string MemoryDir => Path.Combine(_base, "memory");

    /// <summary>The upper layer when the test keeps it (--keep-changes); empty: inside the state directory.</summary>
    public string KeptUpper { get; set; } = "";

    public string Base => _base;

    public string LowerPath(string rel) => Path.Combine(LowerRoot, rel);

    public string Lower(string rel, string content)
    {
        string path = LowerPath(rel);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content);
        return path;
    }

    public string LowerDir(string rel) => Directory.CreateDirectory(LowerPath(rel)).FullName;

    public void LowerLink(string rel, string target)
    {
        string path = LowerPath(rel);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.CreateSymbolicLink(path, target);
    }

    public VfsConfig Config(string initialCwd = "/") => new(
        [
            new MountSpec("overlay", "/", LowerRoot, false),
            new MountSpec("proc", "/proc", "", false),
            new MountSpec("dev", "/dev", "", false),
        ],
        initialCwd, StateDir, MemoryDir, UpperDir: KeptUpper);

    /// <summary>The server, configured on first use.</summary>
    public VfsServer Server => _server ?? Start().GetAwaiter().GetResult();

    public async Task<VfsServer> Start(string initialCwd = "/")
    {
        _server = new VfsServer();
        await _server.ConfigureAsync(Config(initialCwd));
        return _server;
    }

    /// <summary>A second server over the same directories, as after a crash: it rebuilds from what is on disk.</summary>
    public async Task<VfsServer> Restart()
    {
        _server = null;
        return await Start();
    }

    /// <summary>Who the harness asks as: a guest root unless a test says otherwise.</summary>
    public Credentials Creds { get; set; } = Credentials.Root;

    public Task<PathResolution> Resolve(string path, PathOp op, int flags = 0, bool follow = true, string? dirHost = null) =>
        Server.ResolveAsync(new PathRequest(1, 1, new PathArg(path, dirHost), op, follow, Creds, flags));

    public Task<PathResolution> Stat(string path, bool follow = true) => Resolve(path, PathOp.Stat, follow: follow);

    /// <summary>Where the host would read <paramref name="path"/> (the guest's own string when the VFS left it alone).</summary>
    public async Task<string> HostOf(string path, PathOp op = PathOp.Stat, int flags = 0)
    {
        var r = await Resolve(path, op, flags);
        Assert.True(r.Errno == 0, $"{path}: errno {r.Errno}");
        return r.HostPath ?? path;
    }

    /// <summary>What a guest reads from <paramref name="path"/>.</summary>
    public async Task<string> Read(string path) => File.ReadAllText(await HostOf(path, PathOp.Open));

    /// <summary>What a guest writes to <paramref name="path"/> with open(O_WRONLY|O_CREAT|O_TRUNC), as the host does it.</summary>
    public async Task Write(string path, string content, bool truncate = true)
    {
        int flags = LinuxFlags.O_WRONLY | LinuxFlags.O_CREAT | (truncate ? LinuxFlags.O_TRUNC : LinuxFlags.O_APPEND);
        var r = await Resolve(path, PathOp.Open, flags);
        Assert.True(r.Errno == 0, $"{path}: errno {r.Errno}");
        string host = r.HostPath ?? path;
        if (truncate) File.WriteAllText(host, content); else File.AppendAllText(host, content);
        if (r.CommitOnSuccess) await Server.CreatedAsync(r.GuestPath!);
    }

    /// <summary>mkdir as the supervisor carries it out: resolve for Create, mkdir on the host, then vfs/created when asked.</summary>
    public async Task<int> Mkdir(string path)
    {
        var r = await Resolve(path, PathOp.Create, 0, follow: false);
        if (r.Errno != 0) return r.Errno;
        Directory.CreateDirectory(r.HostPath ?? path);
        if (r.CommitOnSuccess) await Server.CreatedAsync(r.GuestPath!);
        return 0;
    }

    /// <summary>The names a guest's getdents64 on the directory gives (without . and ..).</summary>
    public async Task<string[]> List(string path)
    {
        string host = await HostOf(path, PathOp.Open, LinuxFlags.O_DIRECTORY);
        return Directory.EnumerateFileSystemEntries(host).Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal).ToArray();
    }

    public Task<int> Change(NameOp op, string path, string? newPath = null, string? target = null, int flags = 0) =>
        Server.ChangeAsync(new NameChange(1, op, new PathArg(path), Creds, newPath is null ? null : new PathArg(newPath), target, flags));

    public void Dispose()
    {
        try
        {
            Directory.Delete(_base, recursive: true);
        }
        catch (IOException)
        {
        }
        if (KeptUpper.Length > 0 && Directory.Exists(KeptUpper))
            Directory.Delete(KeptUpper, recursive: true);
    }
}
