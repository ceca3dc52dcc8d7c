/* ptrace_floor: the raw cost of catching a syscall with ptrace on this machine.
 *
 *   ptrace_floor [-n N] [-r REPS] [-t MS] [-p PINNING]
 *
 * A minimal C tracer forks a child that stops itself (PTRACE_TRACEME + kill(SIGSTOP)), then
 * loops N times (or until MS milliseconds have passed) on syscall(SYS_getppid) and times its
 * own loop with clock_gettime (vDSO, no syscall); the result goes back through shared
 * memory. Mechanisms:
 *   native   no tracer at all (the child is traced but resumed with PTRACE_CONT: no stops)
 *   tt       PTRACE_SYSCALL, 2 stops per syscall, PTRACE_GETREGS at each stop (the TT path:
 *            what umlmicro --mode tt pays at least for every syscall, emulated or passed)
 *   sysemu   PTRACE_SYSEMU, 1 stop per syscall, GETREGS + SETREGS (rax := result) at the stop;
 *            the host never runs the call (what sysemu pays for an emulated call)
 *   seccomp  a seccomp filter returns SECCOMP_RET_TRACE for getppid only; the tracer resumes
 *            with PTRACE_CONT, and at each PTRACE_EVENT_SECCOMP stop does GETREGS, sets
 *            orig_rax := -1 (skip) and rax := result, SETREGS (what seccomp pays for an
 *            emulated call)
 * Pinnings:
 *   same     tracer and tracee both pinned (sched_setaffinity) to one CPU
 *   split    tracer on one CPU, tracee on another (only with 2+ CPUs allowed)
 *   none     unpinned: both may run on any allowed CPU, as the scheduler likes
 * Output, one line per (mechanism, pinning):
 *   floor=MECH pin=PIN ns_per_syscall=... min_ns=... max_ns=... n=... reps=... cpus=...
 * (n: calls in the last run)
 * ns_per_syscall is the median of REPS runs (a fresh child each). Exit 1 on failure, 2 on
 * bad usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef PTRACE_SYSEMU
#define PTRACE_SYSEMU 31
#endif

enum mech { M_NATIVE, M_TT, M_SYSEMU, M_SECCOMP };
static const char *mech_name[] = {"native", "tt", "sysemu", "seccomp"};
enum pin { P_SAME, P_SPLIT, P_NONE };
static const char *pin_name[] = {"same", "split", "none"};

struct shared {
    volatile double ns_per_call;
    volatile long calls;
    volatile int ok;
};

static struct shared *shm;
static cpu_set_t allowed;
static int cpu_a = -1, cpu_b = -1;
static long cap_ms = 300;

static void fail(const char *what) {
    fprintf(stderr, "ptrace_floor: %s: %s\n", what, strerror(errno));
    exit(1);
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void pin_to(pid_t who, int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(who, sizeof set, &set) != 0) fail("sched_setaffinity");
}

static void unpin(pid_t who) {
    if (sched_setaffinity(who, sizeof allowed, &allowed) != 0) fail("sched_setaffinity");
}

static void install_filter(void) {
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(3);
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) _exit(4);
}

static void child(enum mech m, long n) {
    if (ptrace(PTRACE_TRACEME, 0, 0, 0) != 0) _exit(5);
    syscall(SYS_kill, syscall(SYS_getpid), SIGSTOP);
    if (m == M_SECCOMP) install_filter();
    syscall(SYS_getppid); /* warm */
    uint64_t a = now_ns(), b = a, cap = a + (uint64_t)cap_ms * 1000000u;
    long i = 0;
    while (i < n) { /* n calls, or fewer when cap_ms has passed (checked every 64 calls) */
        syscall(SYS_getppid);
        if ((++i & 63) == 0 && (b = now_ns()) > cap) break;
    }
    b = now_ns();
    shm->ns_per_call = (double)(b - a) / (double)i;
    shm->calls = i;
    shm->ok = 1;
    syscall(SYS_exit_group, 0);
    _exit(0);
}

/* Runs one child under the mechanism; returns its ns per getppid. */
static double run_once(enum mech m, enum pin p, long n) {
    shm->ok = 0;
    shm->ns_per_call = 0;
    if (p == P_NONE) unpin(0);
    else pin_to(0, cpu_a);
    pid_t pid = fork();
    if (pid < 0) fail("fork");
    if (pid == 0) child(m, n); /* inherits the tracer's affinity */
    if (p == P_SPLIT) pin_to(pid, cpu_b);

    int status;
    if (waitpid(pid, &status, 0) != pid) fail("waitpid");
    if (!WIFSTOPPED(status) || WSTOPSIG(status) != SIGSTOP) {
        fprintf(stderr, "ptrace_floor: child did not stop (status 0x%x)\n", status);
        exit(1);
    }
    long opts = PTRACE_O_EXITKILL | PTRACE_O_TRACESYSGOOD;
    if (m == M_SECCOMP) opts |= PTRACE_O_TRACESECCOMP;
    if (ptrace(PTRACE_SETOPTIONS, pid, 0, opts) != 0) fail("PTRACE_SETOPTIONS");

    int resume = m == M_TT ? PTRACE_SYSCALL : m == M_SYSEMU ? PTRACE_SYSEMU : PTRACE_CONT;
    int sig = 0;
    int in_reissue = 0; /* sysemu: a non-getppid call being re-run with PTRACE_SYSCALL */
    struct user_regs_struct regs;
    for (;;) {
        int req = resume;
        if (m == M_SYSEMU && in_reissue) req = PTRACE_SYSCALL;
        if (ptrace(req, pid, 0, sig) != 0) fail("ptrace resume");
        sig = 0;
        if (waitpid(pid, &status, __WALL) != pid) fail("waitpid");
        if (WIFEXITED(status) || WIFSIGNALED(status)) break;
        if (!WIFSTOPPED(status)) continue;
        int s = WSTOPSIG(status);
        if (s == (SIGTRAP | 0x80)) { /* syscall stop */
            if (ptrace(PTRACE_GETREGS, pid, 0, &regs) != 0) fail("PTRACE_GETREGS");
            if (m == M_SYSEMU) {
                if (in_reissue) {
                    /* Resumed with PTRACE_SYSCALL, the skipped call first reports an exit
                     * stop, then the re-issued call its entry and exit stops. */
                    struct __ptrace_syscall_info info;
                    if (ptrace(PTRACE_GET_SYSCALL_INFO, pid, sizeof info, &info) <= 0)
                        fail("PTRACE_GET_SYSCALL_INFO");
                    if (info.op == PTRACE_SYSCALL_INFO_ENTRY) in_reissue = 2;
                    else if (info.op == PTRACE_SYSCALL_INFO_EXIT && in_reissue == 2) in_reissue = 0;
                } else if (regs.orig_rax == SYS_getppid) {
                    regs.rax = 1; /* the emulated result */
                    if (ptrace(PTRACE_SETREGS, pid, 0, &regs) != 0) fail("PTRACE_SETREGS");
                } else {
                    /* pass through: rewind over the syscall instruction and run it for
                     * real under PTRACE_SYSCALL (3 stops) */
                    regs.rax = regs.orig_rax;
                    regs.rip -= 2;
                    if (ptrace(PTRACE_SETREGS, pid, 0, &regs) != 0) fail("PTRACE_SETREGS");
                    in_reissue = 1;
                }
            }
        } else if (s == SIGTRAP && (status >> 16) == PTRACE_EVENT_SECCOMP) {
            if (ptrace(PTRACE_GETREGS, pid, 0, &regs) != 0) fail("PTRACE_GETREGS");
            regs.orig_rax = (unsigned long long)-1;
            regs.rax = 1;
            if (ptrace(PTRACE_SETREGS, pid, 0, &regs) != 0) fail("PTRACE_SETREGS");
        } else if (s != SIGTRAP && s != SIGSTOP) {
            sig = s; /* deliver real signals */
        }
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !shm->ok) {
        fprintf(stderr, "ptrace_floor: %s/%s child failed (status 0x%x)\n", mech_name[m],
                pin_name[p], status);
        exit(1);
    }
    unpin(0);
    return shm->ns_per_call;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static long parse_pos(const char *s, const char *what) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *s == '\0' || *end != '\0' || v <= 0) {
        fprintf(stderr, "ptrace_floor: %s must be a positive integer, got '%s'\n", what, s);
        exit(2);
    }
    return v;
}

static void usage(void) {
    fprintf(stderr,
            "usage: ptrace_floor [-n N] [-r REPS] [-t MS] [-p same|split|none|all]\n"
            "  -n N     getppid calls per run at most (default 20000; native runs use 10x)\n"
            "  -t MS    stop a run after about MS milliseconds (default 300)\n"
            "  -r REPS  runs per row, median reported (default 5)\n"
            "  -p PIN   which pinnings to measure (default all)\n");
    exit(2);
}

int main(int argc, char **argv) {
    long n = 20000, reps = 5;
    const char *pins = "all";
    int c;
    while ((c = getopt(argc, argv, "n:r:t:p:h")) != -1) {
        switch (c) {
        case 'n': n = parse_pos(optarg, "N"); break;
        case 'r': reps = parse_pos(optarg, "REPS"); break;
        case 't': cap_ms = parse_pos(optarg, "MS"); break;
        case 'p': pins = optarg; break;
        default: usage();
        }
    }
    if (optind != argc) usage();
    if (reps > 1000) reps = 1000;
    int want[3] = {0, 0, 0};
    if (!strcmp(pins, "all")) want[0] = want[1] = want[2] = 1;
    else if (!strcmp(pins, "same")) want[P_SAME] = 1;
    else if (!strcmp(pins, "split")) want[P_SPLIT] = 1;
    else if (!strcmp(pins, "none")) want[P_NONE] = 1;
    else usage();

    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) fail("sched_getaffinity");
    for (int i = 0; i < CPU_SETSIZE; i++) {
        if (!CPU_ISSET(i, &allowed)) continue;
        if (cpu_a < 0) cpu_a = i;
        else if (cpu_b < 0) cpu_b = i;
    }
    if (cpu_b < 0) want[P_SPLIT] = 0;

    shm = mmap(NULL, sizeof *shm, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shm == MAP_FAILED) fail("mmap");

    double *v = malloc(sizeof(double) * (size_t)reps);
    if (!v) fail("malloc");
    for (int m = M_NATIVE; m <= M_SECCOMP; m++) {
        for (int p = P_SAME; p <= P_NONE; p++) {
            if (!want[p]) continue;
            long calls = m == M_NATIVE ? n * 10 : n;
            run_once((enum mech)m, (enum pin)p, calls / 20 + 1); /* warm-up */
            for (long r = 0; r < reps; r++) v[r] = run_once((enum mech)m, (enum pin)p, calls);
            qsort(v, (size_t)reps, sizeof(double), cmp_double);
            double med = reps % 2 ? v[reps / 2] : (v[reps / 2 - 1] + v[reps / 2]) / 2;
            char cpus[32];
            if (p == P_SAME) snprintf(cpus, sizeof cpus, "%d", cpu_a);
            else if (p == P_SPLIT) snprintf(cpus, sizeof cpus, "%d/%d", cpu_a, cpu_b);
            else snprintf(cpus, sizeof cpus, "any");
            printf("floor=%s pin=%s ns_per_syscall=%.1f min_ns=%.1f max_ns=%.1f n=%ld reps=%ld cpus=%s\n",
                   mech_name[m], pin_name[p], med, v[0], v[reps - 1], (long)shm->calls, reps, cpus);
            fflush(stdout);
        }
    }
    return 0;
}
