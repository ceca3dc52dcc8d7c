using UmlMicro.Contracts.Linux;
using UmlMicro.Contracts.Servers;
using UmlMicro.Servers.Vfs;
using UmlMicro.Servers.Vfs.Layers;
using UmlMicro.Servers.Vfs.Native;

namespace UmlMicro.ServersTests;

/// <summary>
/// The VFS walks and changes the namespace as a privileged host process, so it checks the caller's credentials itself,
/// as Linux's inode_permission, may_create and may_delete do: search permission on every directory walked, write and
/// search on the parent of a name made or removed, the sticky bit, protected hardlinks, capabilities. The lower layer
/// is made here with owners and modes (the tests run as root), and the guest asks as nobody, as another user, or as a
/// root with or without capabilities.
/// </summary>
public sealed class PermissionTests : IDisposable
{
    private const uint Nobody = 65534, Alice = 2001, Bob = 2002, Staff = 3000;
    private static readonly Credentials NobodyCreds = new(Nobody, Nobody, [], 0);
    private static readonly Credentials AliceCreds = new(Alice, Alice, [], 0);
    private static readonly Credentials BobCreds = new(Bob, Bob, [Staff], 0);

    private readonly VfsHarness _vfs = new();

    public PermissionTests()
    {
        if (Environment.UserName != "root") return;
        // /etc: root's 0755 with a file; /secret: root's 0700; /tmp: 1777 with alice's file; /shared: staff's 0770.
        _vfs.Lower("etc/conf", "x");
        _vfs.LowerDir("etc/sub");
        _vfs.Lower("secret/key", "k");
        Chmod("secret", 0x1C0);
        _vfs.Lower("tmp/alices", "a");
        Chmod("tmp", 0x3FF | (int)LinuxFlags.S_ISVTX);
        Chown("tmp/alices", Alice, Alice);
        _vfs.LowerDir("tmp/alicedir");
        Chown("tmp/alicedir", Alice, Alice);
        _vfs.Lower("shared/doc", "d");
        Chmod("shared", 0x1F8);
        Chown("shared", 0, Staff);
        _vfs.Lower("etc/rootonly", "r");
        Chmod("etc/rootonly", 0x180);
    }

    public void Dispose() => _vfs.Dispose();

    private void Chmod(string rel, int mode) => Assert.Equal(0, HostFs.Chmod(_vfs.LowerPath(rel), (uint)mode));
    private void Chown(string rel, uint uid, uint gid) => Assert.Equal(0, HostFs.Lchown(_vfs.LowerPath(rel), uid, gid));

    private static bool Root => Environment.UserName == "root";

    private Task<int> As(Credentials creds, NameOp op, string path, string? newPath = null, string? target = null)
    {
        _vfs.Creds = creds;
        return _vfs.Change(op, path, newPath, target);
    }

    private async Task<int> ResolveAs(Credentials creds, string path, PathOp op, int flags = 0)
    {
        _vfs.Creds = creds;
        return (await _vfs.Resolve(path, op, flags, follow: op != PathOp.Create)).Errno;
    }

    [Fact]
    public async Task Nobody_cannot_create_remove_or_rename_a_name_in_a_directory_of_root_but_root_can()
    {
        if (!Root) return;
        Assert.Equal(Errno.EACCES, await As(NobodyCreds, NameOp.Unlink, "/etc/conf"));
        Assert.Equal(Errno.EACCES, await As(NobodyCreds, NameOp.Rename, "/etc/conf", "/etc/conf2"));
        Assert.Equal(Errno.EACCES, await As(NobodyCreds, NameOp.Rename, "/etc/conf", "/tmp/conf"));
        Assert.Equal(Errno.EACCES, await As(NobodyCreds, NameOp.Rmdir, "/etc/sub"));
        Assert.Equal(Errno.EACCES, await As(NobodyCreds, NameOp.Symlink, "/etc/link", target: "conf"));
        Assert.Equal(Errno.EACCES, await ResolveAs(NobodyCreds, "/etc/new", PathOp.Open, LinuxFlags.O_CREAT | LinuxFlags.O_WRONLY));
        Assert.Equal(Errno.EACCES, await ResolveAs(NobodyCreds, "/etc/newdir", PathOp.Create));
        // What exists is as it was, and no copy-up was made for a caller who may not write.
        Assert.Equal(0, (await _vfs.Stat("/etc/conf")).Errno);
        Assert.Equal(Errno.EACCES, await ResolveAs(NobodyCreds, "/etc/conf", PathOp.Open, LinuxFlags.O_WRONLY));
        Assert.False(File.Exists(Path.Combine(_vfs.StateDir, "upper", "etc", "conf")));

        Assert.Equal(0, await As(Credentials.Root, NameOp.Rename, "/etc/conf", "/etc/conf2"));
        Assert.Equal(0, await As(Credentials.Root, NameOp.Unlink, "/etc/conf2"));
    }

    [Fact]
    public async Task Errors_keep_Linuxs_order_missing_names_and_types_before_or_after_permissions()
    {
        if (!Root) return;
        // The source is looked up first: a missing one is ENOENT whatever the target's directory allows.
        Assert.Equal(Errno.ENOENT, await As(NobodyCreds, NameOp.Rename, "/tmp/none", "/etc/x"));
        Assert.Equal(Errno.ENOENT, await As(NobodyCreds, NameOp.Link, "/tmp/none", "/etc/x"));
        // An existing name is EEXIST before the directory's permission.
        Assert.Equal(Errno.EEXIST, await As(NobodyCreds, NameOp.Symlink, "/etc/conf", target: "x"));
        Assert.Equal(Errno.EEXIST, await ResolveAs(NobodyCreds, "/etc/sub", PathOp.Create));
        // A missing name to remove: ENOENT (looked up before may_delete).
        Assert.Equal(Errno.ENOENT, await As(NobodyCreds, NameOp.Unlink, "/etc/none"));
        // The permission comes before the type: unlink of a directory, rmdir of a file.
        Assert.Equal(Errno.EACCES, await As(NobodyCreds, NameOp.Unlink, "/etc/sub"));
        Assert.Equal(Errno.EACCES, await As(NobodyCreds, NameOp.Rmdir, "/etc/conf"));
        Assert.Equal(Errno.EISDIR, await As(Credentials.Root, NameOp.Unlink, "/etc/sub"));
        Assert.Equal(Errno.ENOTDIR, await As(Credentials.Root, NameOp.Rmdir, "/etc/conf"));
        // "." and ".." are judged before anything about the directory.
        Assert.Equal(Errno.EINVAL, await As(NobodyCreds, NameOp.Rmdir, "/etc/sub/."));
        Assert.Equal(Errno.EBUSY, await As(NobodyCreds, NameOp.Rename, "/etc/sub/..", "/tmp/x"));
    }

    [Fact]
    public async Task Search_permission_is_checked_on_every_directory_walked_so_a_name_below_is_EACCES_not_ENOENT()
    {
        if (!Root) return;
        Assert.Equal(Errno.EACCES, await ResolveAs(NobodyCreds, "/secret/key", PathOp.Stat));
        Assert.Equal(Errno.EACCES, await ResolveAs(NobodyCreds, "/secret/none", PathOp.Stat));
        Assert.Equal(Errno.EACCES, await ResolveAs(NobodyCreds, "/secret/../etc/conf", PathOp.Stat));
        Assert.Equal(Errno.EACCES, await As(NobodyCreds, NameOp.Unlink, "/secret/key"));
        Assert.Equal(Errno.EACCES, await As(NobodyCreds, NameOp.Link, "/secret/key", "/tmp/key"));
        // The directory itself may be looked at: only names in it need search permission.
        Assert.Equal(0, await ResolveAs(NobodyCreds, "/secret", PathOp.Stat));
        // Root searches it by CAP_DAC_OVERRIDE (or CAP_DAC_READ_SEARCH); a root without capabilities may not.
        Assert.Equal(0, await ResolveAs(Credentials.Root, "/secret/key", PathOp.Stat));
        Assert.Equal(0, await ResolveAs(new Credentials(0, 0, [], 1UL << LinuxFlags.CAP_DAC_READ_SEARCH), "/secret/key", PathOp.Stat));
        // Another user without capabilities may not.
        Assert.Equal(Errno.EACCES, await ResolveAs(new Credentials(1, 1, [], 0), "/secret/key", PathOp.Stat));
        // A symlink's target is walked with the same checks.
        _vfs.LowerLink("etc/tosecret", "/secret/key");
        Assert.Equal(Errno.EACCES, await ResolveAs(NobodyCreds, "/etc/tosecret", PathOp.Stat));
    }

    [Fact]
    public async Task A_walk_kept_for_one_user_does_not_answer_another()
    {
        if (!Root) return;
        Assert.Equal(0, await ResolveAs(Credentials.Root, "/secret/key", PathOp.Stat)); // keeps /secret
        Assert.Equal(Errno.EACCES, await ResolveAs(NobodyCreds, "/secret/key", PathOp.Stat));
        Assert.Equal(Errno.EACCES, await ResolveAs(NobodyCreds, "/secret/none", PathOp.Stat));
    }

    [Fact]
    public async Task In_a_sticky_directory_only_the_files_owner_the_directorys_owner_or_CAP_FOWNER_removes_or_renames()
    {
        if (!Root) return;
        Assert.Equal(Errno.EPERM, await As(NobodyCreds, NameOp.Unlink, "/tmp/alices"));
        Assert.Equal(Errno.EPERM, await As(NobodyCreds, NameOp.Rename, "/tmp/alices", "/tmp/mine"));
        Assert.Equal(Errno.EPERM, await As(NobodyCreds, NameOp.Rmdir, "/tmp/alicedir"));
        Assert.Equal(Errno.EPERM, await As(new Credentials(Bob, Bob, [], 1UL << LinuxFlags.CAP_DAC_OVERRIDE), NameOp.Unlink, "/tmp/alices"));
        // Nobody may make names there, and replace its own: the directory is writable by all.
        Assert.Equal(0, await As(NobodyCreds, NameOp.Symlink, "/tmp/nobodys", target: "x"));
        Assert.Equal(Errno.EPERM, await As(NobodyCreds, NameOp.Rename, "/tmp/nobodys", "/tmp/alices")); // may not delete alice's
        Assert.Equal(0, await As(new Credentials(Bob, Bob, [], 1UL << LinuxFlags.CAP_FOWNER), NameOp.Rename, "/tmp/alices", "/tmp/bobs"));
        Assert.Equal(0, await As(AliceCreds, NameOp.Unlink, "/tmp/bobs")); // still alice's file
        Assert.Equal(0, await As(NobodyCreds, NameOp.Unlink, "/tmp/nobodys"));
        // The directory's owner (root here) may remove anything in it.
        Assert.Equal(0, await As(new Credentials(0, 0, [], 0), NameOp.Rmdir, "/tmp/alicedir"));
    }

    [Fact]
    public async Task A_symlink_the_VFS_makes_belongs_to_the_caller()
    {
        if (!Root) return;
        Assert.Equal(0, await As(NobodyCreds, NameOp.Symlink, "/tmp/ln", target: "alices"));
        var st = HostFs.Lstat(await HostOfLink("/tmp/ln"));
        Assert.Equal((NodeType.Symlink, Nobody, Nobody), (st.Type, st.Uid, st.Gid));
        // In a setgid directory the group is the directory's.
        Assert.Equal(0, HostFs.Chmod(_vfs.LowerPath("shared"), 0x1F8 | LinuxFlags.S_ISGID));
        Assert.Equal(0, await As(BobCreds, NameOp.Symlink, "/shared/ln", target: "doc"));
        st = HostFs.Lstat(await HostOfLink("/shared/ln"));
        Assert.Equal((Bob, Staff), (st.Uid, st.Gid));
    }

    private async Task<string> HostOfLink(string path)
    {
        _vfs.Creds = Credentials.Root;
        var r = await _vfs.Resolve(path, PathOp.Stat, follow: false);
        Assert.Equal(0, r.Errno);
        return r.HostPath ?? path;
    }

    [Fact]
    public async Task Supplementary_groups_count()
    {
        if (!Root) return;
        Assert.Equal(Errno.EACCES, await As(AliceCreds, NameOp.Unlink, "/shared/doc"));
        Assert.Equal(0, await As(BobCreds, NameOp.Rename, "/shared/doc", "/shared/doc2"));
    }

    [Fact]
    public async Task A_directory_that_changes_parent_must_be_writable_itself()
    {
        if (!Root) return;
        _vfs.LowerDir("tmp/d1/ro");
        _vfs.LowerDir("tmp/d2");
        foreach (var d in new[] { "tmp/d1", "tmp/d2" }) Chown(d, Alice, Alice);
        Chown("tmp/d1/ro", Alice, Alice);
        Chmod("tmp/d1/ro", 0x16D); // 0555
        Assert.Equal(Errno.EACCES, await As(AliceCreds, NameOp.Rename, "/tmp/d1/ro", "/tmp/d2/ro"));
        Assert.Equal(Errno.EXDEV, await As(AliceCreds, NameOp.Rename, "/tmp/d1/ro", "/tmp/d1/ro2")); // same parent: no check; a lower dir is EXDEV
    }

    [Fact]
    public async Task Hardlinks_are_protected_and_a_directory_is_EPERM_after_the_permission_check()
    {
        if (!Root) return;
        // /etc/rootonly: root's 0600 regular file; nobody may not read or write it, so may not pin it with a link.
        Assert.Equal(Errno.EPERM, await As(NobodyCreds, NameOp.Link, "/etc/rootonly", "/tmp/pinned"));
        Assert.Equal(0, await As(AliceCreds, NameOp.Link, "/tmp/alices", "/tmp/alices2"));
        Assert.Equal(Errno.EPERM, await As(NobodyCreds, NameOp.Link, "/tmp/alicedir", "/tmp/x")); // not a safe source
        Assert.Equal(Errno.EPERM, await As(Credentials.Root, NameOp.Link, "/etc/sub", "/etc/sublink"));
    }

    [Fact]
    public async Task A_script_the_caller_may_not_execute_is_EACCES()
    {
        if (!Root) return;
        _vfs.Lower("bin/script", "#!/bin/sh\necho hi\n");
        Chmod("bin/script", 0x1C0); // 0700, root's
        Assert.Equal(Errno.EACCES, await ResolveAs(NobodyCreds, "/bin/script", PathOp.Exec));
    }

    [Theory]
    [InlineData(0x1ED, 0u, 0u, 0u, 0ul, LinuxFlags.MAY_EXEC, 0)] // 0755 other may search
    [InlineData(0x1C0, 1u, 0u, 0u, 0ul, LinuxFlags.MAY_EXEC, Errno.EACCES)] // 0700 of root: not another user
    [InlineData(0x1C0, 1u, 0u, 0u, 1ul << LinuxFlags.CAP_DAC_READ_SEARCH, LinuxFlags.MAY_EXEC, 0)]
    [InlineData(0x1C0, 1u, 0u, 0u, 1ul << LinuxFlags.CAP_DAC_READ_SEARCH, LinuxFlags.MAY_WRITE, Errno.EACCES)]
    [InlineData(0x1C0, 1u, 0u, 0u, 1ul << LinuxFlags.CAP_DAC_OVERRIDE, LinuxFlags.MAY_WRITE | LinuxFlags.MAY_EXEC, 0)]
    [InlineData(0x38, 5u, 0u, 7u, 0ul, LinuxFlags.MAY_WRITE, 0)] // 070 and in the group
    [InlineData(0x3F, 5u, 5u, 7u, 0ul, LinuxFlags.MAY_WRITE, Errno.EACCES)] // 0077 and the owner: the owner's bits only
    public void Generic_permission_on_a_directory(int mode, uint uid, uint inodeUid, uint inodeGid, ulong caps, int mask, int expected)
    {
        var dir = new Node(NodeType.Directory, "/d", Layer.Host, Mode: LinuxFlags.S_IFDIR | (uint)mode, Uid: inodeUid, Gid: inodeGid);
        var creds = new Credentials(uid, uid, uid == 5 ? [7u] : [], caps);
        Assert.Equal(expected, new Permissions().Check(creds, dir, mask));
    }

    [Fact]
    public void A_file_without_execute_bits_is_not_executable_even_with_CAP_DAC_OVERRIDE_and_capabilities_cover_only_mapped_ids()
    {
        var rootCaps = new Credentials(0, 0, [], ulong.MaxValue);
        var plain = new Node(NodeType.File, "/f", Layer.Host, Mode: LinuxFlags.S_IFREG | 0x1A4, Uid: 1, Gid: 1);
        Assert.Equal(Errno.EACCES, new Permissions().Check(rootCaps, plain, LinuxFlags.MAY_EXEC));
        Assert.Equal(0, new Permissions().Check(rootCaps, plain with { Mode = LinuxFlags.S_IFREG | 0x1A5 }, LinuxFlags.MAY_EXEC));
        Assert.Equal(0, new Permissions().Check(rootCaps, plain with { Mode = LinuxFlags.S_IFREG }, LinuxFlags.MAY_READ | LinuxFlags.MAY_WRITE));
        // A run by user 1000 maps only 1000: a capability of its guest does not reach a file of user 1.
        var user = new Credentials(1000, 1000, [], ulong.MaxValue);
        Assert.Equal(Errno.EACCES, new Permissions(1000, 1000).Check(user, plain with { Mode = LinuxFlags.S_IFREG }, LinuxFlags.MAY_READ));
        Assert.Equal(0, new Permissions(1000, 1000).Check(user, plain with { Mode = LinuxFlags.S_IFREG, Uid = 1000, Gid = 1000 }, LinuxFlags.MAY_READ));
    }

    [Fact]
    public async Task A_relative_path_is_answered_relative_to_its_directory_so_the_host_searches_nothing_above_it()
    {
        if (!Root) return;
        _vfs.Lower("secret/inner/file", "f");
        Chmod("secret/inner", 0x1FF);
        _vfs.LowerLink("secret/inner/link", "file");
        _vfs.Creds = NobodyCreds;
        string inner = _vfs.LowerPath("secret/inner");
        // From a dirfd (or cwd) inside a directory nobody may not search, as a process that changed its user there.
        var r = await _vfs.Resolve("link", PathOp.Stat, dirHost: inner);
        Assert.Equal((0, "file"), (r.Errno, r.HostPath));
        r = await _vfs.Resolve("./link", PathOp.Access, dirHost: inner);
        Assert.Equal((0, "file"), (r.Errno, r.HostPath));
    }
}
