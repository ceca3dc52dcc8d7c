using UmlMicro.Contracts.Linux;
using UmlMicro.Contracts.Servers;
using UmlMicro.Servers.Vfs.Layers;
using static UmlMicro.Contracts.Linux.LinuxFlags;

namespace UmlMicro.Servers.Vfs;

/// <summary>
/// The permission checks Linux makes on the way to a name and before it changes one (fs/namei.c): the VFS walks and
/// changes the namespace as a privileged host process, so it must refuse for the guest what the host would refuse
/// the guest's own thread. Decided from a node's mode, owner and group (as the host's lstat gave them: for the
/// copy-on-write root the upper copy's, else the lower file's, as overlayfs uses the upper inode) and the caller's
/// <see cref="Credentials"/>. Not modelled: POSIX ACLs, and the immutable and append-only flags (the host refuses
/// those itself with EPERM when the VFS carries the change out, after the checks here, as Linux orders them).
/// Nodes without host attributes (procfs, devfs) are the host's to judge when it opens them.
/// </summary>
internal sealed class Permissions(uint? onlyUid = null, uint? onlyGid = null, bool protectedHardlinks = true)
{
    /// <summary>The host's fs.protected_hardlinks, which decides may_linkat.</summary>
    public static bool HostProtectsHardlinks()
    {
        try
        {
            return File.ReadAllText("/proc/sys/fs/protected_hardlinks").Trim() != "0";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return true;
        }
    }

    /// <summary>capable_wrt_inode_uidgid: the capability counts only over a file whose owner and group the guest's user
    /// namespace maps (all of them in a run by root; only its own user's otherwise).</summary>
    private bool Capable(Credentials c, int cap, in Node inode) =>
        c.HasCapability(cap) && (onlyUid is null || (inode.Uid == onlyUid && inode.Gid == onlyGid));

    /// <summary>Whether the node has host attributes to decide by.</summary>
    public static bool Judged(in Node node) => node.Mode != 0;

    /// <summary>generic_permission: 0 or EACCES for <paramref name="mask"/> (MAY_READ, MAY_WRITE, MAY_EXEC).</summary>
    public int Check(Credentials c, in Node inode, int mask)
    {
        if (!Judged(inode)) return 0;
        uint mode = inode.Mode;
        uint granted = inode.Uid == c.Uid ? (mode >> 6) & 7 : c.InGroup(inode.Gid) ? (mode >> 3) & 7 : mode & 7;
        if ((mask & ~granted & 7) == 0) return 0;
        if ((mode & S_IFMT) == S_IFDIR)
        {
            // DACs are overridable for directories.
            if ((mask & MAY_WRITE) == 0 && Capable(c, CAP_DAC_READ_SEARCH, inode)) return 0;
            return Capable(c, CAP_DAC_OVERRIDE, inode) ? 0 : Errno.EACCES;
        }
        if (mask == MAY_READ && Capable(c, CAP_DAC_READ_SEARCH, inode)) return 0;
        // Read and write always; execute only when some execute bit is set.
        if ((mask & MAY_EXEC) == 0 || (mode & 0x49) != 0)
            if (Capable(c, CAP_DAC_OVERRIDE, inode)) return 0;
        return Errno.EACCES;
    }

    /// <summary>may_lookup: search permission on a directory a name is looked up in.</summary>
    public int Search(Credentials c, in Node dir) => Check(c, dir, MAY_EXEC);

    /// <summary>may_create's permission part: write and search on the directory the name is made in (EEXIST and
    /// EROFS come before it, from the caller).</summary>
    public int Create(Credentials c, in Node dir) => Check(c, dir, MAY_WRITE | MAY_EXEC);

    /// <summary>
    /// may_delete: write and search on the directory (EACCES), then the sticky bit (EPERM): in a sticky directory only
    /// the file's owner, the directory's owner or a holder of CAP_FOWNER over the file may remove or rename it away.
    /// The type checks that follow (EISDIR, ENOTDIR) are the caller's.
    /// </summary>
    public int Delete(Credentials c, in Node dir, in Node victim)
    {
        if (Create(c, dir) is var denied and not 0) return denied;
        if (Judged(dir) && (dir.Mode & S_ISVTX) != 0 && Judged(victim)
            && victim.Uid != c.Uid && dir.Uid != c.Uid && !Capable(c, CAP_FOWNER, victim))
            return Errno.EPERM;
        return 0;
    }

    /// <summary>inode_owner_or_capable.</summary>
    public bool OwnerOrCapable(Credentials c, in Node inode) => !Judged(inode) || inode.Uid == c.Uid || Capable(c, CAP_FOWNER, inode);

    /// <summary>
    /// may_linkat under fs.protected_hardlinks: the owner (or a holder of CAP_FOWNER) may link anything; anyone else
    /// only a regular file that is not setuid nor setgid-executable and that they may both read and write. EPERM.
    /// </summary>
    public int Link(Credentials c, in Node source)
    {
        if (!protectedHardlinks || OwnerOrCapable(c, source)) return 0;
        uint mode = source.Mode;
        bool safe = (mode & S_IFMT) == S_IFREG && (mode & S_ISUID) == 0 && (mode & (S_ISGID | 0x8)) != (S_ISGID | 0x8)
            && Check(c, source, MAY_READ | MAY_WRITE) == 0;
        return safe ? 0 : Errno.EPERM;
    }

    /// <summary>The group a new object in <paramref name="dir"/> gets: the directory's when it is setgid, else the fsgid.</summary>
    public static uint NewGroup(Credentials c, in Node dir) => Judged(dir) && (dir.Mode & S_ISGID) != 0 ? dir.Gid : c.Gid;
}
