using System.IO.MemoryMappedFiles;
using UmlMicro.Contracts.Servers;
using UmlMicro.Supervisor.Guest;

namespace UmlMicro.Tests.Unit;

/// <summary>
/// The supervisor's keeping of VFS leases (NameCache): an answer is given again only to the same question, only
/// while the lease epoch holds the value it was granted at. The epoch is written here as the VFS writes it: through
/// the cache's <see cref="NameCache.EpochPath"/>, mapped shared.
/// </summary>
public sealed class NameCacheTests : IDisposable
{
    private readonly NameCache _cache;
    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _epoch;

    public NameCacheTests()
    {
        _cache = NameCache.Create() ?? throw new InvalidOperationException("the host made no memfd for the lease epoch");
        using var stream = new FileStream(_cache.EpochPath, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
        _map = MemoryMappedFile.CreateFromFile(stream, null, sizeof(long), MemoryMappedFileAccess.ReadWrite, HandleInheritability.None, leaveOpen: false);
        _epoch = _map.CreateViewAccessor(0, sizeof(long));
        Epoch = 7;
    }

    public void Dispose()
    {
        _epoch.Dispose();
        _map.Dispose();
        _cache.Dispose();
    }

    private long Epoch
    {
        get => _epoch.ReadInt64(0);
        set => _epoch.Write(0, value);
    }

    private static PathRequest Ask(string path, string? dir = null, int vpid = 2, PathOp op = PathOp.Stat, bool follow = true, int flags = 0,
        Credentials? creds = null) =>
        new(vpid, vpid, new PathArg(path, dir), op, follow, creds ?? Credentials.Root, flags);

    private PathResolution Leased(string host, long? lease = null, int ms = 1000) =>
        new(0, host, host, Lease: lease ?? Epoch, LeaseMs: ms);

    private bool Reused(PathRequest request, out PathResolution answer) => _cache.TryGet(_cache.Of(request), out answer);

    [Fact]
    public void A_missing_name_is_given_again_only_while_no_call_that_made_a_name_has_ended_since_it_was_asked()
    {
        var missing = new PathResolution(2, null, null, Lease: Epoch, LeaseMs: 1000); // ENOENT
        var present = Leased("/host/etc/passwd");
        _cache.Grant(_cache.Of(Ask("/etc/missing")), missing, _cache.Asked);
        _cache.Grant(_cache.Of(Ask("/etc/passwd")), present, _cache.Asked);
        Assert.True(Reused(Ask("/etc/missing"), out var again));
        Assert.Same(missing, again);

        // The host made a name after the VFS answered the call that asked for it: a missing name may exist now.
        var askedBefore = _cache.Of(Ask("/etc/other"));
        var createsBefore = _cache.Asked;
        _cache.Created();
        Assert.False(Reused(Ask("/etc/missing"), out _));
        Assert.True(Reused(Ask("/etc/passwd"), out _)); // what exists is changed only by what moves the epoch

        // An answer to a question asked before that call ended is not kept as a negative lease; one asked after is.
        _cache.Grant(askedBefore, missing, createsBefore);
        Assert.False(Reused(Ask("/etc/other"), out _));
        _cache.Grant(_cache.Of(Ask("/etc/other")), missing, _cache.Asked);
        Assert.True(Reused(Ask("/etc/other"), out _));
    }

    [Fact]
    public void A_granted_answer_is_given_again_to_the_same_question_while_the_epoch_holds()
    {
        var answer = Leased("/host/etc/passwd");
        _cache.Grant(_cache.Of(Ask("/etc/passwd")), answer, _cache.Asked);

        Assert.True(Reused(Ask("/etc/passwd"), out var again));
        Assert.Same(answer, again);
        Assert.True(Reused(Ask("/etc/passwd", vpid: 9), out _)); // an absolute path is the same question from anyone
        Assert.Equal(2, _cache.Used);
    }

    [Fact]
    public void A_changed_epoch_voids_every_lease()
    {
        _cache.Grant(_cache.Of(Ask("/a")), Leased("/host/a"), _cache.Asked);
        _cache.Grant(_cache.Of(Ask("/b")), Leased("/host/b"), _cache.Asked);

        Epoch++;

        Assert.False(Reused(Ask("/a"), out _));
        Assert.False(Reused(Ask("/b"), out _));
        Assert.Equal(0, _cache.Used);
    }

    [Fact]
    public void An_answer_granted_at_an_epoch_already_gone_is_never_given()
    {
        // The VFS revoked (a change) between granting the answer and the supervisor keeping it.
        _cache.Grant(_cache.Of(Ask("/a")), Leased("/host/a", lease: Epoch - 1), _cache.Asked);

        Assert.False(Reused(Ask("/a"), out _));
    }

    [Fact]
    public void An_answer_without_a_lease_or_without_a_lifetime_is_not_kept()
    {
        _cache.Grant(_cache.Of(Ask("/no-lease")), new PathResolution(0, "/host/x", "/no-lease"), _cache.Asked);
        _cache.Grant(_cache.Of(Ask("/zero-ms")), Leased("/host/y", ms: 0), _cache.Asked);
        _cache.Grant(_cache.Of(Ask("/zero-lease")), Leased("/host/z", lease: 0), _cache.Asked);

        Assert.False(Reused(Ask("/no-lease"), out _));
        Assert.False(Reused(Ask("/zero-ms"), out _));
        Epoch = 0; // even if the epoch word held 0, 0 means "no lease"
        Assert.False(Reused(Ask("/zero-lease"), out _));
    }

    [Fact]
    public void A_question_differs_by_op_follow_and_flags()
    {
        _cache.Grant(_cache.Of(Ask("/l", op: PathOp.Stat, follow: true)), Leased("/host/target"), _cache.Asked);

        Assert.False(Reused(Ask("/l", op: PathOp.Stat, follow: false), out _));
        Assert.False(Reused(Ask("/l", op: PathOp.Open), out _));
        Assert.False(Reused(Ask("/l", flags: 4), out _));
        Assert.True(Reused(Ask("/l"), out _));
    }

    [Fact]
    public void A_cwd_relative_question_is_a_new_one_after_any_cwd_changed_or_from_another_process()
    {
        var asked = _cache.Of(Ask("f", vpid: 2));
        _cache.Grant(asked, Leased("/host/one/f"), _cache.Asked);
        Assert.True(Reused(Ask("f", vpid: 2), out _));
        Assert.False(Reused(Ask("f", vpid: 3), out _));
        _cache.Grant(_cache.Of(Ask("/abs")), Leased("/host/abs"), _cache.Asked);

        _cache.CwdsChanged();

        Assert.False(Reused(Ask("f", vpid: 2), out _));
        Assert.True(Reused(Ask("/abs"), out _)); // an absolute path does not depend on a cwd
    }

    [Fact]
    public void A_question_asked_before_a_cwd_changed_is_kept_under_the_cwds_it_was_asked_under()
    {
        // The VFS answered for the old cwd while the process changed it: the answer must not serve the new cwd.
        var asked = _cache.Of(Ask("f"));
        _cache.CwdsChanged();
        _cache.Grant(asked, Leased("/host/old/f"), _cache.Asked);

        Assert.False(Reused(Ask("f"), out _));
    }

    [Fact]
    public void A_dirfd_relative_question_differs_per_directory_and_not_per_process_or_cwd()
    {
        _cache.Grant(_cache.Of(Ask("f", dir: "/host/a", vpid: 2)), Leased("/host/a/f"), _cache.Asked);

        Assert.False(Reused(Ask("f", dir: "/host/b", vpid: 2), out _));
        Assert.False(Reused(Ask("f", vpid: 2), out _)); // the same name from the cwd is another question
        _cache.CwdsChanged();
        Assert.True(Reused(Ask("f", dir: "/host/a", vpid: 5), out var answer));
        Assert.Equal("/host/a/f", answer.HostPath);
    }

    [Fact]
    public void An_answer_leased_to_one_user_never_answers_another_but_does_answer_an_equal_user_of_another_process()
    {
        var root = Credentials.Root;
        var nobody = new Credentials(65534, 65534, [], 0);
        _cache.Grant(_cache.Of(Ask("/root/secret", creds: root)), Leased("/root/secret"), _cache.Asked);

        Assert.False(Reused(Ask("/root/secret", creds: nobody), out _));
        Assert.False(Reused(Ask("/root/secret", creds: root with { Caps = 0 }), out _)); // root without capabilities
        Assert.False(Reused(Ask("/root/secret", creds: root with { Groups = [4] }), out _));
        Assert.True(Reused(Ask("/root/secret", vpid: 9, creds: new Credentials(0, 0, [], ulong.MaxValue)), out _));
    }

    [Fact]
    public void A_call_that_changed_attributes_voids_every_lease_asked_before_it_ended()
    {
        var asked = _cache.Of(Ask("/d/f"));
        var moment = _cache.Asked;
        _cache.Grant(_cache.Of(Ask("/d/g")), Leased("/host/d/g"), _cache.Asked);
        _cache.AttributesChanged(); // chmod 700 /d ended
        _cache.Grant(asked, Leased("/host/d/f"), moment); // answered while the chmod ran
        Assert.False(Reused(Ask("/d/f"), out _));
        Assert.False(Reused(Ask("/d/g"), out _));
        _cache.Grant(_cache.Of(Ask("/d/g")), Leased("/host/d/g"), _cache.Asked);
        Assert.True(Reused(Ask("/d/g"), out _));
    }

    [Fact]
    public void A_question_asked_with_the_processes_is_the_same_only_from_the_same_thread_with_the_same_list()
    {
        // A procfs answer names tasks of the list it was asked with: /proc/self is another file for another thread,
        // and a list Sched made again (a process came or went) may number them otherwise.
        IReadOnlyList<ProcPid> list = [new ProcPid(2, 200, [new ProcTid(2, 200), new ProcTid(3, 201)])];
        var stat = new PathRequest(2, 2, new PathArg("/proc/self/stat"), PathOp.Open, true, Credentials.Root, Processes: list);
        _cache.Grant(_cache.Of(stat), Leased("/mem/proc/2_stat"), _cache.Asked);

        Assert.True(Reused(stat, out _));
        Assert.False(Reused(stat with { Vtid = 3 }, out _));
        Assert.False(Reused(stat with { Processes = [.. list] }, out _));
        Assert.False(Reused(stat with { Processes = null }, out _));
    }
}
