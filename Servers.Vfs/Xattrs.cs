using System.Buffers.Binary;
using UmlMicro.Contracts.Linux;
using UmlMicro.Contracts.Servers;
using UmlMicro.Servers.Vfs.Native;
using static UmlMicro.Contracts.Linux.LinuxFlags;

namespace UmlMicro.Servers.Vfs;

/// <summary>
/// The guest's extended attributes of the namespaces the kernel keeps (<see cref="XattrCall.IsKept"/>: trusted.*, and
/// security.* but security.capability), per inode, with Linux's semantics: fs/xattr.c's checks and the capability
/// module's defaults with no other security module (setting or removing one needs CAP_SYS_ADMIN, EPERM without it;
/// anyone may read a security.* one; trusted.* ones are invisible without CAP_SYS_ADMIN, ENODATA), then the
/// filesystem's (EEXIST, ENODATA, ERANGE, ENOSPC). A security.* name the host's file has is the guest's to read until
/// the guest sets its own; the host's trusted.* names are never the guest's (the host hides them from a user namespace).
/// <para>
/// Kept in the state directory, one file per inode named by its identity (<see cref="InodeStat.Key"/>: device, inode
/// number, birth time), never by anything a guest named. A file is replaced whole by a rename, so a VFS killed at any
/// moment leaves the old attributes or the new ones, and a restarted VFS reads them back. Bounded as ext4 bounds an
/// inode's attributes to one block: <see cref="InodeSpace"/> bytes of names and values per inode, ENOSPC beyond. How
/// many inodes have attributes is bounded by the files a guest can make or reach, each costing at most that much.
/// </para>
/// </summary>
internal sealed class Xattrs
{
    /// <summary>The bytes of names and values one inode may keep: an ext4 block.</summary>
    public const int InodeSpace = 4096;

    private const string Partial = ".new";
    private readonly string dir;

    public Xattrs(string dir)
    {
        this.dir = Directory.CreateDirectory(dir).FullName;
        // A write a crash cut short: the attributes it was to replace are still there.
        foreach (var partial in Directory.EnumerateFiles(this.dir, "*" + Partial)) File.Delete(partial);
    }

    /// <summary>Refusals that depend on the caller alone, which Linux makes before the filesystem does anything (a
    /// copy-up comes after them): setting or removing needs CAP_SYS_ADMIN (trusted.*: xattr_permission; security.*:
    /// cap_inode_setxattr, cap_inode_removexattr).</summary>
    public static int Refuses(XattrCall call, Credentials creds) =>
        call.Op is XattrOp.Set or XattrOp.Remove && !creds.HasCapability(CAP_SYS_ADMIN) ? Errno.EPERM : 0;

    /// <summary>Carries <paramref name="call"/> out on the inode host path <paramref name="host"/> names (its last symlink
    /// followed when <paramref name="follow"/>); 0 or the errno.</summary>
    public int Call(XattrCall call, Credentials creds, string host, bool follow, out XattrResult result)
    {
        result = new XattrResult(0);
        if (call.Name.Contains('\0')) throw ProtocolViolation.Of("an attribute name holds a NUL");
        if (call.Op != XattrOp.List && (call.Name.Length == 0 || PathBytes.ByteCount(call.Name) > XATTR_NAME_MAX)) return Errno.ERANGE;
        if (call.Value?.Length > XATTR_SIZE_MAX) return Errno.E2BIG;
        if (Refuses(call, creds) is var refused and not 0) return refused;
        int errno = HostFs.Inode(host, follow, out var inode);
        if (errno != 0) return errno;
        if (call.Op == XattrOp.List) return List(creds, host, follow, inode.Key, call.Size, out result);
        if (call.Op != XattrOp.Get && (inode.Immutable || inode.AppendOnly)) return Errno.EPERM;
        bool trusted = call.Name.StartsWith(XattrCall.TrustedPrefix, StringComparison.Ordinal);
        if (trusted && !creds.HasCapability(CAP_SYS_ADMIN)) return Errno.ENODATA; // a read: a write was refused above
        if (call.Name is XattrCall.TrustedPrefix or XattrCall.SecurityPrefix) return Errno.EINVAL; // a prefix names nothing
        var kept = Load(inode.Key);
        int at = kept.FindIndex(a => a.Name == call.Name);
        byte[]? hostValue = null;
        if (at < 0 && !trusted)
        {
            // The host's own value; the host's answer also says whether its filesystem has attributes of this kind.
            errno = HostFs.GetXattr(host, follow, call.Name, out var value);
            if (errno == 0) hostValue = value;
            else if (errno != Errno.ENODATA) return errno;
        }
        switch (call.Op)
        {
            case XattrOp.Get:
                var found = at >= 0 ? kept[at].Value : hostValue;
                if (found is null) return Errno.ENODATA;
                if (call.Size == 0) result = new XattrResult(found.Length);
                else if (found.Length > call.Size) return Errno.ERANGE;
                else result = new XattrResult(found.Length, found);
                return 0;
            case XattrOp.Set:
                bool exists = at >= 0 || hostValue is not null;
                if ((call.Flags & XATTR_CREATE) != 0 && exists) return Errno.EEXIST;
                if ((call.Flags & XATTR_REPLACE) != 0 && !exists) return Errno.ENODATA;
                var attribute = new Attribute(call.Name, call.Value ?? []);
                if (at >= 0) kept[at] = attribute;
                else kept.Add(attribute);
                if (kept.Sum(a => a.Space) > InodeSpace) return Errno.ENOSPC;
                Save(inode.Key, kept);
                return 0;
            default:
                // Only the guest's own: the host refuses a guest the removal of its own security.* attribute.
                if (at < 0) return hostValue is null ? Errno.ENODATA : Errno.EPERM;
                kept.RemoveAt(at);
                Save(inode.Key, kept);
                return 0;
        }
    }

    /// <summary>listxattr: the host's names the guest may see, and the kept ones.</summary>
    private int List(Credentials creds, string host, bool follow, string key, long size, out XattrResult result)
    {
        result = new XattrResult(0);
        int errno = HostFs.ListXattr(host, follow, out var hostNames);
        if (errno != 0) return errno;
        bool admin = creds.HasCapability(CAP_SYS_ADMIN);
        var names = hostNames.Where(n => !n.StartsWith(XattrCall.TrustedPrefix, StringComparison.Ordinal)).ToList();
        foreach (var a in Load(key))
            if ((admin || !a.Name.StartsWith(XattrCall.TrustedPrefix, StringComparison.Ordinal)) && !names.Contains(a.Name))
                names.Add(a.Name);
        var list = names.SelectMany(n => PathBytes.EncodeZ(n)).ToArray();
        if (size == 0) result = new XattrResult(list.Length);
        else if (list.Length > size) return size >= XATTR_LIST_MAX ? Errno.E2BIG : Errno.ERANGE;
        else result = new XattrResult(list.Length, list);
        return 0;
    }

    /// <summary>The inode's last name is gone: its attributes go with it (a new file given the same number is another
    /// inode to Linux, and its birth time tells them apart here where the filesystem keeps one).</summary>
    public void Forget(string key) => File.Delete(Path.Combine(dir, key));

    private readonly record struct Attribute(string Name, byte[] Value)
    {
        public int Space => PathBytes.ByteCount(Name) + Value.Length;
    }

    /// <summary>An inode's attributes: each a 16-bit name length, a 32-bit value length, the name, the value. A file that
    /// does not read as that (which only a damaged disk makes) counts as no attributes.</summary>
    private List<Attribute> Load(string key)
    {
        byte[] bytes;
        // Most inodes have none: no exception thrown for each (ls -l asks every file for security.selinux).
        using (var file = HostFs.OpenStream(Path.Combine(dir, key), append: false))
        {
            if (file is null) return [];
            bytes = new byte[file.Length];
            file.ReadExactly(bytes);
        }
        var kept = new List<Attribute>();
        for (int at = 0; at < bytes.Length;)
        {
            if (bytes.Length - at < 6) return [];
            int nameLength = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(at));
            int valueLength = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(at + 2));
            at += 6;
            if (valueLength < 0 || bytes.Length - at < nameLength + (long)valueLength) return [];
            kept.Add(new Attribute(PathBytes.Decode(bytes.AsSpan(at, nameLength)), bytes.AsSpan(at + nameLength, valueLength).ToArray()));
            at += nameLength + valueLength;
        }
        return kept;
    }

    private void Save(string key, List<Attribute> kept)
    {
        string path = Path.Combine(dir, key);
        if (kept.Count == 0)
        {
            File.Delete(path);
            return;
        }
        var bytes = new List<byte>();
        Span<byte> head = stackalloc byte[6];
        foreach (var a in kept)
        {
            var name = PathBytes.Encode(a.Name);
            BinaryPrimitives.WriteUInt16LittleEndian(head, (ushort)name.Length);
            BinaryPrimitives.WriteInt32LittleEndian(head[2..], a.Value.Length);
            bytes.AddRange(head);
            bytes.AddRange(name);
            bytes.AddRange(a.Value);
        }
        File.WriteAllBytes(path + Partial, bytes.ToArray());
        File.Move(path + Partial, path, overwrite: true);
    }
}
