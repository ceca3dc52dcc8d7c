/* spin: CPU-bound threads, each doing the same fixed amount of work without a syscall, for the
 * virtual-CPU rows of the benchmark; optionally beside a thread that makes getpid calls all along.
 *
 *   spin ITERATIONS [THREADS [getpid]]   THREADS spinners (default 2), and with "getpid" one more thread
 *                                        calling getpid until the last spinner ends
 *   spin getpid COUNT                    COUNT getpid calls in one thread alone
 *   spin share MS NICE...                one spinner per NICE value, each at that nice, for MS milliseconds;
 *                                        a value fifoN or rrN makes that spinner SCHED_FIFO or SCHED_RR at
 *                                        priority N instead (root, or RLIMIT_RTPRIO)
 *
 * Output, one line on stdout:
 *   wall_ms=... first_done_pct=... all_progressed=yes|no [getpid_ns=...]
 * wall_ms: from the start of the first spinner to the end of the last one. first_done_pct: when the first
 * spinner finished, as a share of wall_ms: near 100 when the threads share the CPUs evenly (in parallel,
 * or taking turns), lower when one runs to its end before the others start. all_progressed: each spinner saw
 * another's counter move while it was still working. getpid_ns: the mean time of one getpid call.
 * share: shares=A,B,... each spinner's part of all the work done, in percent (on one CPU, Linux gives nice 0
 * and nice 5 about 75 and 25: their load weights are 1024 and 335).
 * Exit 2: bad usage. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 64

static volatile uint64_t progress[MAX_THREADS];
static volatile int spinners_left;
static uint64_t iterations, start_ns, end_ns[MAX_THREADS];
static int threads, saw_other[MAX_THREADS];
static uint64_t getpid_calls, getpid_ns_total;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *work(void *arg) {
    int me = (int)(intptr_t)arg, other = (me + 1) % threads;
    uint64_t x = 88172645463325252u, seen = progress[other];
    for (uint64_t i = 1; i <= iterations; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17; /* xorshift: work the compiler cannot fold */
        if ((i & 0xfffff) == 0) {
            progress[me] = i;
            if (progress[other] != seen && progress[other] < iterations) saw_other[me] = 1;
            seen = progress[other];
        }
    }
    progress[me] = iterations + (x & 1); /* keep x alive; >= iterations means done */
    end_ns[me] = now_ns();
    __atomic_sub_fetch(&spinners_left, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

/* share: spins at its own nice until the deadline, counting its work. */
static uint64_t deadline_ns;
static int nices[MAX_THREADS], policies[MAX_THREADS];
static void *share_work(void *arg) {
    int me = (int)(intptr_t)arg;
    if (policies[me] != SCHED_OTHER) {
        struct sched_param sp = {.sched_priority = nices[me]};
        if (sched_setscheduler(0, policies[me], &sp) != 0) perror("sched_setscheduler");
    } else if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), nices[me]) != 0) perror("setpriority");
    uint64_t x = 88172645463325252u, i = 0;
    while (1) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        if ((++i & 0xffff) == 0 && now_ns() >= deadline_ns) break;
    }
    progress[me] = i + (x & 1);
    return NULL;
}

/* getpid until every spinner is done (count 0), or COUNT times. */
static void *caller(void *arg) {
    uint64_t count = (uint64_t)(uintptr_t)arg, n = 0, t0 = now_ns();
    while (count ? n < count : __atomic_load_n(&spinners_left, __ATOMIC_SEQ_CST) > 0) {
        syscall(SYS_getpid); /* not glibc's getpid: each call is a syscall */
        n++;
    }
    getpid_ns_total = now_ns() - t0;
    getpid_calls = n;
    return NULL;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "getpid") == 0) {
        uint64_t count = strtoull(argv[2], NULL, 10);
        if (count == 0) goto usage;
        caller((void *)(uintptr_t)count);
        printf("getpid_ns=%.1f\n", (double)getpid_ns_total / (double)getpid_calls);
        return 0;
    }
    if (argc >= 4 && strcmp(argv[1], "share") == 0) {
        threads = argc - 3;
        if (threads > MAX_THREADS) goto usage;
        for (int i = 0; i < threads; i++) {
            const char *v = argv[3 + i];
            policies[i] = strncmp(v, "fifo", 4) == 0 ? SCHED_FIFO : strncmp(v, "rr", 2) == 0 ? SCHED_RR : SCHED_OTHER;
            nices[i] = atoi(v + (policies[i] == SCHED_FIFO ? 4 : policies[i] == SCHED_RR ? 2 : 0));
        }
        deadline_ns = now_ns() + strtoull(argv[2], NULL, 10) * 1000000u;
        pthread_t t[MAX_THREADS];
        for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, share_work, (void *)(intptr_t)i);
        double total = 0;
        for (int i = 0; i < threads; i++) { pthread_join(t[i], NULL); total += (double)progress[i]; }
        printf("shares=");
        for (int i = 0; i < threads; i++) printf(i ? ",%.1f" : "%.1f", 100.0 * (double)progress[i] / total);
        printf("\n");
        return 0;
    }
    if (argc < 2 || argc > 4 || (iterations = strtoull(argv[1], NULL, 10)) < 0x100000) goto usage;
    threads = argc >= 3 ? atoi(argv[2]) : 2;
    int with_getpid = argc == 4 && strcmp(argv[3], "getpid") == 0;
    if (threads < 1 || threads > MAX_THREADS || (argc == 4 && !with_getpid)) goto usage;

    pthread_t t[MAX_THREADS], g;
    spinners_left = threads;
    start_ns = now_ns();
    if (with_getpid) pthread_create(&g, NULL, caller, NULL);
    for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, work, (void *)(intptr_t)i);
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    if (with_getpid) pthread_join(g, NULL);
    uint64_t first = end_ns[0], last = end_ns[0];
    int all = 1;
    for (int i = 0; i < threads; i++) {
        if (end_ns[i] < first) first = end_ns[i];
        if (end_ns[i] > last) last = end_ns[i];
        if (threads > 1 && !saw_other[i]) all = 0;
    }
    double wall = (double)(last - start_ns);
    printf("wall_ms=%.1f first_done_pct=%.0f all_progressed=%s", wall / 1e6, 100.0 * (double)(first - start_ns) / wall, all ? "yes" : "no");
    if (with_getpid) printf(" getpid_ns=%.1f", getpid_calls ? (double)getpid_ns_total / (double)getpid_calls : 0.0);
    printf("\n");
    return 0;
usage:
    fputs("usage: spin ITERATIONS [THREADS [getpid]] (ITERATIONS at least 1048576, THREADS 1 to 64) | spin getpid COUNT | spin share MS NICE|fifoN|rrN...\n", stderr);
    return 2;
}
