using UmlMicro.Contracts.Linux;
using UmlMicro.Contracts.Servers;
using UmlMicro.Servers.Vfs;

namespace UmlMicro.ServersTests;

/// <summary>
/// A namespace change the supervisor sends again after the VFS died is made once: answered from the journal when
/// the dead server finished it, made again (and its own result taken for success) when it was cut off midway.
/// </summary>
public sealed class ChangeJournalTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("umlmicro-change-").FullName;

    private string Path0 => Path.Combine(_dir, "change");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void A_change_answered_before_the_crash_is_answered_again_by_the_next_server_without_being_made()
    {
        using (var first = new ChangeJournal(Path0))
            Assert.Equal(Errno.EXDEV, first.Apply(3, NameOp.Rename, () => Errno.EXDEV));

        int made = 0;
        using var next = new ChangeJournal(Path0);
        Assert.Equal(Errno.EXDEV, next.Apply(3, NameOp.Rename, () => ++made));
        Assert.Equal(0, made);
        Assert.Equal(0, next.Apply(4, NameOp.Rename, () => { made++; return 0; }));
        Assert.Equal(1, made);
    }

    [Theory]
    [InlineData(NameOp.Unlink, Errno.ENOENT)]
    [InlineData(NameOp.Rmdir, Errno.ENOENT)]
    [InlineData(NameOp.Rename, Errno.ENOENT)]
    [InlineData(NameOp.Link, Errno.EEXIST)]
    [InlineData(NameOp.Symlink, Errno.EEXIST)]
    public void A_change_cut_off_midway_finds_its_own_work_done_and_succeeds(NameOp op, int alreadyDone)
    {
        using (var first = new ChangeJournal(Path0))
            Assert.Throws<IOException>(() => first.Apply(9, op, () => throw new IOException("killed mid-change")));

        using var next = new ChangeJournal(Path0);
        Assert.Equal(0, next.Apply(9, op, () => alreadyDone));
        Assert.Equal(alreadyDone, next.Apply(10, op, () => alreadyDone)); // a new change's error stands
    }

    [Fact]
    public void A_change_without_an_id_is_simply_made()
    {
        using var journal = new ChangeJournal(Path0);
        Assert.Equal(Errno.ENOENT, journal.Apply(0, NameOp.Unlink, () => Errno.ENOENT));
        Assert.Equal(Errno.ENOENT, journal.Apply(0, NameOp.Unlink, () => Errno.ENOENT));
    }
}
