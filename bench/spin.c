/* spin: two CPU-bound threads, each doing the same fixed amount of work without a syscall, for the
 * virtual-CPU rows of the benchmark.
 *
 *   spin ITERATIONS
 *
 * Output, one line on stdout:
 *   wall_ms=... first_done_pct=... both_progressed=yes|no
 * wall_ms: from the first thread's start to the last thread's end. first_done_pct: when the first
 * thread finished, as a share of wall_ms: near 100 when the threads share the CPUs evenly (in parallel
 * on two, or taking turns on one), near 50 when one runs to its end before the other starts.
 * both_progressed: each thread saw the other's counter move while it was still working.
 * Exit 2: bad usage. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static volatile uint64_t progress[2];
static uint64_t iterations, start_ns, end_ns[2];
static int saw_other[2];

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *work(void *arg) {
    int me = (int)(intptr_t)arg, other = 1 - me;
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
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 2 || (iterations = strtoull(argv[1], NULL, 10)) < 0x100000) {
        fputs("usage: spin ITERATIONS (at least 1048576)\n", stderr);
        return 2;
    }
    pthread_t t[2];
    start_ns = now_ns();
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, work, (void *)(intptr_t)i);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    uint64_t first = end_ns[0] < end_ns[1] ? end_ns[0] : end_ns[1], last = end_ns[0] < end_ns[1] ? end_ns[1] : end_ns[0];
    double wall = (double)(last - start_ns);
    printf("wall_ms=%.1f first_done_pct=%.0f both_progressed=%s\n", wall / 1e6, 100.0 * (double)(first - start_ns) / wall,
           saw_other[0] && saw_other[1] ? "yes" : "no");
    return 0;
}
