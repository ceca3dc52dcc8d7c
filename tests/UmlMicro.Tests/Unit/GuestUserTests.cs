using UmlMicro.Supervisor.Cli;

namespace UmlMicro.Tests.Unit;

/// <summary>--user and an image's User, looked up in the guest's own account files, not the host's.</summary>
public sealed class GuestUserTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("guestuser-").FullName;

    public GuestUserTests()
    {
        Directory.CreateDirectory(Path.Combine(_root, "etc"));
        File.WriteAllText(Path.Combine(_root, "etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nalice:x:1500:1600:Alice:/home/alice:/bin/sh\n# comment\nbob:x:1501:1501::home/bob:/bin/sh\n");
        File.WriteAllText(Path.Combine(_root, "etc/group"),
            "root:x:0:\nstaff:x:1600:\nwheel:x:10:alice,bob\naudio:x:29:bob,alice\nbob:x:1501:\n");
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public void A_name_takes_its_ids_home_and_groups_from_the_guests_files()
    {
        var u = GuestUser.Resolve("alice", _root);
        Assert.Equal((1500u, 1600u, "/home/alice"), (u.Uid, u.Gid, u.Home));
        Assert.Equal([1600u, 10u, 29u], u.Groups);
    }

    [Fact]
    public void A_group_after_the_colon_replaces_the_primary_one()
    {
        Assert.Equal(10u, GuestUser.Resolve("alice:wheel", _root).Gid);
        Assert.Equal(77u, GuestUser.Resolve("alice:77", _root).Gid);
        Assert.Equal("/", GuestUser.Resolve("bob", _root).Home); // a home that is not a path
    }

    [Fact]
    public void A_number_in_the_files_is_that_user_and_one_outside_them_gets_group_0_as_Docker_gives()
    {
        Assert.Equal((1500u, 1600u), (GuestUser.Resolve("1500", _root).Uid, GuestUser.Resolve("1500", _root).Gid));
        var stranger = GuestUser.Resolve("4242", _root);
        Assert.Equal((4242u, 0u, "/"), (stranger.Uid, stranger.Gid, stranger.Home));
        Assert.Equal([0u], stranger.Groups);
    }

    [Theory]
    [InlineData("mallory")]
    [InlineData("alice:nogroup")]
    [InlineData("a:b:c")]
    [InlineData(":10")]
    [InlineData("alice:")]
    public void What_the_guest_does_not_know_is_a_usage_error(string spec) =>
        Assert.Throws<UsageError>(() => GuestUser.Resolve(spec, _root));

    [Fact]
    public void Account_files_that_are_symlinks_are_not_followed_to_the_host()
    {
        File.Delete(Path.Combine(_root, "etc/passwd"));
        File.CreateSymbolicLink(Path.Combine(_root, "etc/passwd"), "/etc/passwd");
        Assert.Throws<UsageError>(() => GuestUser.Resolve("root", _root)); // the host has root; the guest's file is not read
        Assert.Equal(0u, GuestUser.Resolve("0", _root).Uid);
    }
}
