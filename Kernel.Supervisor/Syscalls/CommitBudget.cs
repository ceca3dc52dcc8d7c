using UmlMicro.Contracts.Servers;
using UmlMicro.Supervisor.Servers;

namespace UmlMicro.Supervisor.Syscalls;

/// <summary>
/// The guest's commit budget, held by the supervisor: bytes the MM server granted ahead, which memory calls spend
/// at their entry stop without a round trip. Only when a call may commit more than the budget holds is the server
/// asked (mm/reserve), with the call itself, so that a decision near the limit is made on the server's exact map;
/// the answer refills the budget for the calls that follow. What a call spent goes back to the server with its
/// record (<see cref="MmEvent.Charged"/>); a call the host refused gives it back to the budget.
/// <para>
/// At entry the supervisor does not know the map, so it spends an upper bound: the whole length of a writable
/// private or shared anonymous mmap (MAP_FIXED may replace memory already paid for), the whole range of an
/// mprotect that adds write permission, the growth of an mremap, the size of a new System V segment, and a growth of
/// the break from the one <see cref="HeapBreaks"/> knows (a process whose break is not known asks the server).
/// </para>
/// </summary>
internal sealed class CommitBudget(ServerLink<IMmServer> mm, long limit, HeapBreaks breaks)
{
    private const int PROT_WRITE = 2, MAP_SHARED = 0x01, MAP_SHARED_VALIDATE = 0x03, MAP_TYPE = 0x0f, MAP_ANONYMOUS = 0x20, MAP_NORESERVE = 0x4000;
    private const int MREMAP_DONTUNMAP = 4, SHM_HUGETLB = 0x800, SHM_NORESERVE = 0x1000;
    private const ulong PageMask = 4095;

    private readonly Lock _gate = new();
    private long _budget;

    /// <summary>The breaks a growth is estimated from, which brk(0) is also answered from.</summary>
    public HeapBreaks Breaks => breaks;

    /// <summary>Whether a limit is set: without one, memory calls are only recorded.</summary>
    public bool Limited => limit > 0;

    /// <summary>What the budget asks the server for beyond a call's need: a 32nd of the limit, from 1 to 32 MiB.</summary>
    private long Refill => Math.Clamp(limit / 32, 1L << 20, 32L << 20);

    /// <summary>
    /// Pays for the memory call <paramref name="call"/> (its Result unused) before the host runs it. False means
    /// it would take the guest over its limit: the call must fail with ENOMEM. <paramref name="charged"/> is what
    /// the call took from the budget.
    /// </summary>
    public bool TryCharge(MmEvent call, out long charged)
    {
        charged = 0;
        lock (_gate)
        {
            if (Estimate(call) is long estimate && estimate <= _budget)
            {
                _budget -= estimate;
                charged = estimate;
                return true;
            }
            var reply = mm.Call(m => m.ReserveAsync(new CommitRequest(call, _budget, Refill)));
            if (!reply.Allowed) return false;
            _budget += reply.Granted - reply.Charge;
            charged = reply.Charge;
            return true;
        }
    }

    /// <summary>The host refused a call that was paid for: nothing was committed.</summary>
    public void Refund(long charged)
    {
        if (charged == 0) return;
        lock (_gate) _budget += charged;
    }

    /// <summary>An upper bound of what the call commits, or null when only the server can tell.</summary>
    private long? Estimate(MmEvent e)
    {
        switch (e.Op)
        {
            case MmOp.Mmap:
                if ((e.Flags & MAP_NORESERVE) != 0) return 0;
                bool shared = (e.Flags & MAP_TYPE) is MAP_SHARED or MAP_SHARED_VALIDATE;
                bool anonymous = e.Fd < 0 || (e.Flags & MAP_ANONYMOUS) != 0;
                return (shared ? anonymous : (e.Prot & PROT_WRITE) != 0) ? Pages(e.Length) : 0;
            case MmOp.Mprotect:
                return (e.Prot & PROT_WRITE) != 0 ? Pages(e.Length) : 0;
            case MmOp.Mremap:
                if (e.Length == 0) return 0; // a second mapping of shared memory commits nothing
                long? grown = e.NewLength > e.Length ? Pages(e.NewLength - e.Length) : 0;
                long? kept = (e.Flags & MREMAP_DONTUNMAP) != 0 ? Pages(e.Length) : 0;
                return grown + kept;
            case MmOp.Brk:
                if (e.Addr == 0) return 0; // the query libc makes first
                if (!breaks.TryGet(e.Vpid, out ulong old)) return null;
                ulong newEnd = PageUp(e.Addr), oldEnd = PageUp(old);
                return newEnd > oldEnd ? (long)Math.Min(newEnd - oldEnd, long.MaxValue) : 0;
            case MmOp.Shmget:
                return (e.Flags & (SHM_HUGETLB | SHM_NORESERVE)) != 0 ? 0 : Pages(e.Length);
            case MmOp.Fork:
                return null; // the copy's size is in the server's map only
            default:
                return 0;
        }
    }

    // A length past any address space makes the estimate too big for any budget: the server decides.
    private static long? Pages(ulong length) => length > (1UL << 56) ? null : (long)PageUp(length);

    private static ulong PageUp(ulong v) => v > ulong.MaxValue - PageMask ? ulong.MaxValue & ~PageMask : (v + PageMask) & ~PageMask;
}
