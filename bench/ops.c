/* ops: runs one named operation in a loop and prints the nanoseconds per operation.
 *
 *   ops [-r REPS] [-t MS] [-f FILE] OP N
 *   ops -l                      list the operations
 *
 * The program times its own loop with clock_gettime(CLOCK_MONOTONIC) (a vDSO call, no
 * syscall), so when it runs under a tracer (umlmicro, strace, proot) the tracer's startup is
 * not counted. Procedure:
 *   1. warm-up: runs OP until 20 ms have passed (at least 3 times, at most N/10+3 times) and
 *      estimates the cost of one operation;
 *   2. picks n = min(N, MS milliseconds worth of operations, at least 3) per repetition;
 *   3. runs REPS repetitions of n operations, each timed as a whole; ns_per_op is the median
 *      of the per-repetition means (min/max are reported too);
 *   4. runs one more pass of min(n, 20000) operations timing each one separately, for the
 *      p50/p99 latencies (each sample includes one clock_gettime, about 20-30 ns).
 * Output, one line on stdout:
 *   op=NAME n=... reps=... ns_per_op=... min_ns=... max_ns=... p50_ns=... p99_ns=... samples=...
 * Every operation's result is checked; a failing operation ends the program with exit 1
 * (a broken kernel must not look fast). Exit 2: bad usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static const char *file_path; /* for open-close and stat */
static int devnull_fd = -1;

static void die(const char *what) {
    fprintf(stderr, "ops: %s: %s\n", what, strerror(errno));
    exit(1);
}

static inline uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void op_getppid(void) {
    if (syscall(SYS_getppid) < 0) die("getppid");
}

static void op_getpid(void) {
    if (syscall(SYS_getpid) <= 0) die("getpid");
}

static void op_write_devnull(void) {
    if (write(devnull_fd, "x", 1) != 1) die("write /dev/null");
}

static void op_open_close(void) {
    int fd = open(file_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) die("open");
    if (close(fd) != 0) die("close");
}

static void op_stat(void) {
    struct stat st;
    if (stat(file_path, &st) != 0) die("stat");
}

static void op_fork_wait(void) {
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) _exit(0);
    int status;
    if (waitpid(pid, &status, 0) != pid) die("waitpid");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "ops: fork-wait: child status 0x%x\n", status);
        exit(1);
    }
}

static void op_exec_true(void) {
    static char *const argv[] = {"true", NULL};
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        execve("/bin/true", argv, environ);
        _exit(127);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid) die("waitpid");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "ops: exec-true: child status 0x%x (127: execve failed)\n", status);
        exit(1);
    }
}

/* The second thread of getpid-beside-stat: stat in a loop for as long as the program runs. */
static void *stat_forever(void *arg) {
    (void)arg;
    for (;;) op_stat();
    return NULL;
}

static void start_statting_thread(void) {
    pthread_t t;
    if (pthread_create(&t, NULL, stat_forever, NULL) != 0) die("pthread_create");
}

static void op_mmap_munmap(void) {
    /* 64 KiB private anonymous, touched once: what malloc does for a large block. */
    char *p = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) die("mmap");
    p[0] = 1;
    if (munmap(p, 65536) != 0) die("munmap");
}

struct op {
    const char *name;
    void (*fn)(void);
    const char *what;
    void (*setup)(void); /* run once before the warm-up, or NULL */
};

static const struct op ops[] = {
    {"getppid", op_getppid, "raw syscall(SYS_getppid): emulated by umlmicro with a Sched server round trip", NULL},
    {"getpid", op_getpid, "raw syscall(SYS_getpid): emulated by umlmicro from a pid cached in the supervisor", NULL},
    {"write-devnull", op_write_devnull, "write(2) of 1 byte to /dev/null (opened once): a passed-through call", NULL},
    {"open-close", op_open_close, "open(FILE, O_RDONLY) + close: a path resolved by the VFS server", NULL},
    {"stat", op_stat, "stat(FILE) of a host file: a path resolved by the VFS server", NULL},
    {"fork-wait", op_fork_wait, "fork + child _exit(0) + waitpid", NULL},
    {"exec-true", op_exec_true, "fork + child execve(/bin/true) + waitpid", NULL},
    {"mmap-munmap", op_mmap_munmap, "mmap 64 KiB private anonymous + touch + munmap: two calls recorded by the MM server", NULL},
    {"getpid-beside-stat", op_getpid, "getpid, as above, while a second thread loops on stat(FILE): SMP, a thread's calls beside another's server calls",
     start_statting_thread},
};
#define NOPS (sizeof ops / sizeof ops[0])

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void usage(void) {
    fprintf(stderr,
            "usage: ops [-r REPS] [-t MS] [-f FILE] OP N\n"
            "       ops -l\n"
            "  OP      one of the operations listed by -l\n"
            "  N       iterations per repetition (an upper bound, see -t)\n"
            "  -r REPS repetitions; the median is reported (default 5)\n"
            "  -t MS   cap one repetition at about MS milliseconds (default 200)\n"
            "  -f FILE file for open-close and stat (default /etc/hostname)\n");
    exit(2);
}

static long parse_pos(const char *s, const char *what) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *s == '\0' || *end != '\0' || v <= 0) {
        fprintf(stderr, "ops: %s must be a positive integer, got '%s'\n", what, s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv) {
    long reps = 5, cap_ms = 200;
    file_path = "/etc/hostname";
    int c;
    while ((c = getopt(argc, argv, "+r:t:f:lh")) != -1) {
        switch (c) {
        case 'r': reps = parse_pos(optarg, "REPS"); break;
        case 't': cap_ms = parse_pos(optarg, "MS"); break;
        case 'f': file_path = optarg; break;
        case 'l':
            for (size_t i = 0; i < NOPS; i++) printf("%-18s %s\n", ops[i].name, ops[i].what);
            return 0;
        default: usage();
        }
    }
    if (argc - optind != 2) usage();
    const struct op *op = NULL;
    for (size_t i = 0; i < NOPS; i++)
        if (strcmp(argv[optind], ops[i].name) == 0) op = &ops[i];
    if (!op) {
        fprintf(stderr, "ops: unknown operation '%s' (ops -l lists them)\n", argv[optind]);
        return 2;
    }
    long max_n = parse_pos(argv[optind + 1], "N");
    if (reps > 1000) reps = 1000;

    devnull_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (devnull_fd < 0) die("open /dev/null");
    void (*fn)(void) = op->fn;
    if (op->setup) op->setup();

    /* 1. warm-up and estimate */
    long warm = 0, warm_max = max_n / 10 + 3;
    uint64_t t0 = now_ns(), t = t0;
    while (warm < warm_max && (warm < 3 || t - t0 < 20000000u)) {
        fn();
        warm++;
        t = now_ns();
    }
    double est = (double)(t - t0) / (double)warm;
    double fit = (double)cap_ms * 1e6 / (est > 1 ? est : 1);
    long n = fit < (double)max_n ? (long)fit : max_n;
    if (n < 3) n = 3;
    if (n > max_n) n = max_n;

    /* 2./3. timed repetitions */
    double *per = malloc(sizeof(double) * (size_t)reps);
    if (!per) die("malloc");
    for (long r = 0; r < reps; r++) {
        uint64_t a = now_ns();
        for (long i = 0; i < n; i++) fn();
        uint64_t b = now_ns();
        per[r] = (double)(b - a) / (double)n;
    }
    qsort(per, (size_t)reps, sizeof(double), cmp_double);
    double median = reps % 2 ? per[reps / 2] : (per[reps / 2 - 1] + per[reps / 2]) / 2;

    /* 4. per-operation samples for percentiles */
    long ns = n < 20000 ? n : 20000;
    uint64_t *s = malloc(sizeof(uint64_t) * (size_t)ns);
    if (!s) die("malloc");
    uint64_t prev = now_ns();
    for (long i = 0; i < ns; i++) {
        fn();
        uint64_t cur = now_ns();
        s[i] = cur - prev;
        prev = cur;
    }
    qsort(s, (size_t)ns, sizeof(uint64_t), cmp_u64);
    uint64_t p50 = s[(ns - 1) / 2];
    uint64_t p99 = s[(long)((double)(ns - 1) * 0.99)];

    printf("op=%s n=%ld reps=%ld ns_per_op=%.1f min_ns=%.1f max_ns=%.1f p50_ns=%llu p99_ns=%llu samples=%ld\n",
           op->name, n, reps, median, per[0], per[reps - 1], (unsigned long long)p50,
           (unsigned long long)p99, ns);
    fflush(stdout);
    return 0;
}
