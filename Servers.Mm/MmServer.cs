using UmlMicro.Contracts.Servers;

namespace UmlMicro.Servers.Mm;

/// <summary>
/// The memory-management server: one <see cref="VmaMap"/> per address space, kept from the memory calls the host
/// carried out, and what /proc/PID/maps shows of it. The mapping itself is done by the host kernel; this
/// server only knows what is mapped (placement and the memory limit come in later versions).
/// <para>
/// Rebuilding after a crash: the server keeps no journal. Its state is a function of the events the supervisor
/// reported, in their order: mm/configure, then every mm/space_exec, mm/space_created, mm/record and
/// mm/space_exited it saw. The supervisor may leave out the history of a space that no live pid refers to any
/// more, but must keep the rest in order, including every brk since the space's exec (the first one seen fixes
/// where the heap starts). A space whose memory calls were not all recorded cannot be rebuilt from the events;
/// /proc/HOSTPID/maps of the host process would be the way to resynchronise it.
/// </para>
/// </summary>
internal sealed class MmServer() : KernelServerBase(Contract.MmName, Contract.MmVersion), IMmServer
{
    // Requests are serialised: the server is a single-threaded kernel, one message at a time, as in MINIX.
    private readonly Lock gate = new();
    private readonly Dictionary<int, AddressSpace> spaces = new();
    private long memoryLimitBytes;

    /// <summary>The configured limit, recorded only: nothing is refused because of it yet.</summary>
    public long MemoryLimitBytes
    {
        get
        {
            lock (gate)
                return memoryLimitBytes;
        }
    }

    public Task ConfigureAsync(MmConfig config)
    {
        if (config.MemoryLimitBytes < 0)
            throw ProtocolViolation.Of($"a memory limit cannot be negative ({config.MemoryLimitBytes})");
        lock (gate)
            memoryLimitBytes = config.MemoryLimitBytes;
        return Task.CompletedTask;
    }

    public Task SpaceCreatedAsync(int parentVpid, int childVpid, bool shared)
    {
        lock (gate)
        {
            var parent = Space(parentVpid);
            if (spaces.ContainsKey(childVpid))
                throw ProtocolViolation.Of($"process {childVpid} already has an address space");
            spaces.Add(childVpid, shared ? parent : parent.Fork());
        }
        return Task.CompletedTask;
    }

    /// <summary>A fresh, empty space; this is also how the first process gets one, at its first execve.</summary>
    public Task SpaceExecAsync(int vpid)
    {
        lock (gate)
            spaces[vpid] = new AddressSpace();
        return Task.CompletedTask;
    }

    /// <summary>The pid lets go of its space, which is gone once no pid refers to it.</summary>
    public Task SpaceExitedAsync(int vpid)
    {
        lock (gate)
        {
            if (!spaces.Remove(vpid))
                throw ProtocolViolation.Of($"process {vpid} has no address space");
        }
        return Task.CompletedTask;
    }

    /// <summary>Replays a memory call; one that failed on the host (negative result) changed nothing.</summary>
    public Task RecordAsync(MmEvent e)
    {
        if (e.Result < 0)
            return Task.CompletedTask;
        lock (gate)
        {
            try
            {
                Space(e.Vpid).Apply(e);
            }
            catch (Exception ex) when (ex is ArgumentException or OverflowException)
            {
                throw ProtocolViolation.Of($"{e.Op} in process {e.Vpid} cannot have succeeded on the host: {ex.Message}");
            }
        }
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<Vma>> MapsAsync(int vpid)
    {
        lock (gate)
        {
            IReadOnlyList<Vma> maps = [.. Space(vpid).Vmas.Areas.Select(a => a.ToVma())];
            return Task.FromResult(maps);
        }
    }

    private AddressSpace Space(int vpid) =>
        spaces.TryGetValue(vpid, out var space) ? space : throw ProtocolViolation.Of($"process {vpid} has no address space");
}
