namespace UmlMicro.Contracts.Linux;

/// <summary>
/// The scheduling ABI (include/uapi/linux/sched.h, sched/types.h, linux/sched/prio.h, kernel/sched/syscalls.c): the
/// policies, sched_attr's flags and layout, the nice and real-time priority ranges. Read by the supervisor, which
/// copies sched_attr and sched_param in and out of the guest, and by Sched, which keeps what they say.
/// </summary>
public static class SchedAbi
{
    public const int SCHED_NORMAL = 0, SCHED_FIFO = 1, SCHED_RR = 2, SCHED_BATCH = 3, SCHED_IDLE = 5, SCHED_DEADLINE = 6;

    /// <summary>sched_setparam's policy, and SCHED_FLAG_KEEP_POLICY's: the thread's own.</summary>
    public const int SETPARAM_POLICY = -1;

    /// <summary>sched_setscheduler's and sched_getscheduler's legacy flag in the policy argument.</summary>
    public const int SCHED_RESET_ON_FORK = 0x40000000;

    public const long SCHED_FLAG_RESET_ON_FORK = 0x01, SCHED_FLAG_RECLAIM = 0x02, SCHED_FLAG_DL_OVERRUN = 0x04,
        SCHED_FLAG_KEEP_POLICY = 0x08, SCHED_FLAG_KEEP_PARAMS = 0x10, SCHED_FLAG_UTIL_CLAMP_MIN = 0x20,
        SCHED_FLAG_UTIL_CLAMP_MAX = 0x40, SCHED_FLAG_ALL = 0x7f, SCHED_FLAG_SUGOV = 0x10000000;

    public const long SCHED_FLAG_UTIL_CLAMP = SCHED_FLAG_UTIL_CLAMP_MIN | SCHED_FLAG_UTIL_CLAMP_MAX;

    /// <summary>The flags a DEADLINE thread keeps beside its parameters (dl.flags), answered by sched_getattr.</summary>
    public const long DeadlineFlags = SCHED_FLAG_RECLAIM | SCHED_FLAG_DL_OVERRUN;

    public const int MIN_NICE = -20, MAX_NICE = 19, MAX_RT_PRIO = 100;

    /// <summary>Linux's SCHED_RR time slice (RR_TIMESLICE, /proc/sys/kernel/sched_rr_timeslice_ms's default).</summary>
    public const long RR_TIMESLICE_NS = 100_000_000;

    /// <summary>sysctl_sched_dl_period_min and _max's defaults (100 µs, 2^22 µs): a DEADLINE period must lie between.</summary>
    public const long DL_PERIOD_MIN_NS = 100_000, DL_PERIOD_MAX_NS = (1L << 22) * 1000;

    /// <summary>DL_SCALE: a DEADLINE runtime below 2^10 ns is EINVAL.</summary>
    public const int DL_SCALE = 10;

    /// <summary>The share of each CPU DEADLINE threads may reserve together (sched_rt_runtime_us / sched_rt_period_us, 950000/1000000).</summary>
    public const double DL_BANDWIDTH = 0.95;

    /// <summary>getpriority/setpriority's "which".</summary>
    public const int PRIO_PROCESS = 0, PRIO_PGRP = 1, PRIO_USER = 2;

    /// <summary>struct sched_attr: its first version's size (VER0), the size Linux knows (VER1: util clamps added),
    /// and each field's offset.</summary>
    public const int SCHED_ATTR_SIZE_VER0 = 48, SCHED_ATTR_SIZE_VER1 = 56;

    public const int AttrSize = 0, AttrPolicy = 4, AttrFlags = 8, AttrNice = 16, AttrPriority = 20, AttrRuntime = 24,
        AttrDeadline = 32, AttrPeriod = 40, AttrUtilMin = 48, AttrUtilMax = 52;

    public static bool ValidPolicy(int policy) => policy is SCHED_NORMAL or SCHED_FIFO or SCHED_RR or SCHED_BATCH or SCHED_IDLE or SCHED_DEADLINE;

    public static bool RealTime(int policy) => policy is SCHED_FIFO or SCHED_RR;

    /// <summary>nice_to_rlimit: RLIMIT_NICE's and getpriority's scale, 40 for nice -20 down to 1 for nice 19.</summary>
    public static int NiceToRlimit(int nice) => MAX_NICE - nice + 1;
}
