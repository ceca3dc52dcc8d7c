namespace UmlMicro.Tests.Integration;

/// <summary>
/// The second wall as a guest meets it: the host kernel itself confines the guest (its own namespaces, a capability
/// bounding set cut to Docker's, a private network with --net none). EscapeTests try to get past it.
/// </summary>
public sealed class HostWallTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void The_guests_root_holds_only_dockers_default_capabilities()
    {
        var r = GuestRunner.Run(_dir.Path, "sh", "-c", "grep -E '^Cap(Bnd|Eff)' /proc/self/status");
        // CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP
        Expect.Success("CapEff:\t00000000a80425fb\nCapBnd:\t00000000a80425fb\n", r);
    }

    [Fact]
    public void With_net_none_the_guest_has_its_own_network_with_only_loopback_up()
    {
        const string probe = """
            import socket
            print(sorted(name for _, name in socket.if_nameindex()))
            server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen(1)
            client = socket.create_connection(server.getsockname())
            peer, _ = server.accept(); client.sendall(b"ping"); print(peer.recv(4).decode())
            """;
        var isolated = GuestRunner.Run(_dir.Path, ["--net", "none"], Tools.Python3, "-c", probe);
        Expect.Success("['lo']\nping\n", isolated);
        // by default the guest uses the host's network: the host's interfaces are there
        var shared = GuestRunner.Run(_dir.Path, Tools.Python3, "-c", "import socket; print(len(socket.if_nameindex()))");
        Expect.Success($"{System.Net.NetworkInformation.NetworkInterface.GetAllNetworkInterfaces().Length}\n", shared);
    }

    [Fact]
    public void The_host_network_cannot_be_configured_from_the_guest()
    {
        // SIOCSIFFLAGS on the host's loopback, with the flags it has (were the wall missing, nothing would change):
        // EPERM, as without CAP_NET_ADMIN over the host's network namespace
        const string probe = """
            import fcntl, socket, struct
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            flags = fcntl.ioctl(s, 0x8913, struct.pack("16sH14x", b"lo", 0))
            try:
                fcntl.ioctl(s, 0x8914, flags)
                print("set")
            except OSError as e:
                print(e.errno)
            """;
        Expect.Success("1\n", GuestRunner.Run(_dir.Path, Tools.Python3, "-c", probe));
    }
}
