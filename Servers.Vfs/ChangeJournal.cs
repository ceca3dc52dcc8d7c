using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;
using UmlMicro.Contracts.Linux;
using UmlMicro.Contracts.Servers;

namespace UmlMicro.Servers.Vfs;

/// <summary>
/// The last namespace change's request id and outcome, kept on disk: the supervisor sends a change again when the
/// server died before answering, not knowing whether it was applied. One that was is answered from here, not
/// applied twice. The id is written before the change is made and the outcome after, so a change cut off between
/// the two is known as begun; made again, it finds its own work done (the name it removed is gone, the name it made
/// is there) and that counts as success.
/// </summary>
internal sealed class ChangeJournal : IDisposable
{
    private const int Begun = 1, Done = 2, RecordSize = 16;
    private readonly SafeFileHandle _file;
    private long _id;
    private int _state, _errno;

    public ChangeJournal(string path)
    {
        _file = File.OpenHandle(path, FileMode.OpenOrCreate, FileAccess.ReadWrite);
        Span<byte> record = stackalloc byte[RecordSize];
        if (RandomAccess.Read(_file, record, 0) == RecordSize)
        {
            _id = BinaryPrimitives.ReadInt64LittleEndian(record);
            _state = BinaryPrimitives.ReadInt32LittleEndian(record[8..]);
            _errno = BinaryPrimitives.ReadInt32LittleEndian(record[12..]);
        }
    }

    /// <summary>Makes change <paramref name="id"/> (0: one without an id) once, however often it is asked for.</summary>
    public int Apply(long id, NameOp op, Func<int> change)
    {
        if (id == 0) return change();
        if (id == _id && _state == Done) return _errno;
        bool again = id == _id && _state == Begun;
        Write(id, Begun, 0);
        int errno = change();
        if (again && errno == (op is NameOp.Link or NameOp.Symlink ? Errno.EEXIST : Errno.ENOENT)) errno = 0;
        Write(id, Done, errno);
        return errno;
    }

    private void Write(long id, int state, int errno)
    {
        (_id, _state, _errno) = (id, state, errno);
        Span<byte> record = stackalloc byte[RecordSize];
        BinaryPrimitives.WriteInt64LittleEndian(record, id);
        BinaryPrimitives.WriteInt32LittleEndian(record[8..], state);
        BinaryPrimitives.WriteInt32LittleEndian(record[12..], errno);
        RandomAccess.Write(_file, record, 0);
    }

    public void Dispose() => _file.Dispose();
}
