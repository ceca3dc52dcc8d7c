/* umlmicro-launch: the first guest process before it becomes the guest.
 *
 *   umlmicro-launch SIGIGN FILTER LAYOUT NOFILE PATH ARGV0 [ARGS...]
 *
 * SIGIGN is the hex mask of signals the user's shell left ignored (SigIgn of /proc/PID/status): the
 * guest inherits those as ignored and every other signal at its default, as it would have without
 * the supervisor in between (the .NET runtime ignores SIGPIPE, and exec keeps ignored signals).
 * It leads its own process group (and takes the terminal's foreground if the supervisor had it).
 * NOFILE is "SOFT:HARD", the guest's RLIMIT_NOFILE, each a number or "-" to keep the limit it inherited: set here,
 * before the tracer seizes it, so that no rule the kernel applies to the guest's own setrlimit is in the way.
 * It becomes a child subreaper, so orphaned guest processes are reparented to guest pid 1 as in a
 * pid namespace (the setting survives execve). Then it stops itself so the supervisor's tracer thread can PTRACE_SEIZE it with its options.
 * Once resumed it installs FILTER (hex bytes of a struct sock_filter array, or "-" for none) as a
 * seccomp filter — only now, after the tracer set PTRACE_O_TRACESECCOMP, or trapped calls would
 * fail with ENOSYS — LAYOUT "fixed" turns the host's address-space randomisation off for the guest
 * (personality ADDR_NO_RANDOMIZE, which every guest process inherits across fork and execve, so the same
 * program gets the same addresses in every run), "random" keeps it — and execs PATH with the rest of its arguments and the environment it was given.
 * The exec is the first syscall the kernel sees from the guest.
 *
 *   umlmicro-launch --tick MICROSECONDS
 *
 * is the scheduler's ticker instead: the tracer thread can only sleep in waitpid, so its clock is a
 * traced child that stops itself (SIGSTOP) every MICROSECONDS. The tracer swallows each stop as a tick
 * and resumes it while the virtual CPUs are contended; otherwise it leaves it stopped, costing nothing.
 *
 *   umlmicro-launch --doorbell
 *
 * is the tracer's doorbell: a traced child asleep in pause(). A syscall worker that finished serving a
 * guest call off the tracer thread sends it a signal; its signal stop is what wakes the tracer's waitpid,
 * the only place the tracer sleeps. The tracer swallows the signal, and pause() goes on. */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* The kernel's struct sigaction: glibc's signal() refuses 32 and 33, which it reserves for itself. */
struct ksigaction { void (*handler)(int); unsigned long flags; void (*restorer)(void); unsigned long mask; };

static int hexval(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static int install_filter(const char *hex) {
    size_t n = strlen(hex);
    if (n == 0 || n % 16 != 0) return -1;
    unsigned char *bytes = malloc(n / 2);
    if (!bytes) return -1;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return -1;
        bytes[i] = (unsigned char)(hi << 4 | lo);
    }
    struct sock_fprog prog = { (unsigned short)(n / 16), (struct sock_filter *)bytes };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

static int tick(long us) {
    if (us <= 0) return 2;
    struct timespec period = { us / 1000000, (us % 1000000) * 1000 };
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0); /* never outlives the supervisor's tracer thread */
    for (;;) {
        kill(getpid(), SIGSTOP);
        nanosleep(&period, NULL);
    }
}

static _Noreturn void doorbell(void) {
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0); /* never outlives the supervisor's tracer thread */
    kill(getpid(), SIGSTOP);                   /* for the tracer to seize it */
    for (;;) pause();
}

/* One side of NOFILE: "-" keeps *value. */
static int limit_value(const char *text, size_t len, rlim_t *value) {
    if (len == 1 && text[0] == '-') return 0;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(text, &end, 10);
    if (len == 0 || errno != 0 || (size_t)(end - text) != len) return -1;
    *value = (rlim_t)n;
    return 0;
}

static int set_file_limit(const char *spec) {
    const char *colon = strchr(spec, ':');
    struct rlimit lim;
    if (!colon || getrlimit(RLIMIT_NOFILE, &lim) != 0) return -1;
    if (limit_value(spec, (size_t)(colon - spec), &lim.rlim_cur) != 0 || limit_value(colon + 1, strlen(colon + 1), &lim.rlim_max) != 0)
        return -1;
    if (lim.rlim_cur > lim.rlim_max) lim.rlim_cur = lim.rlim_max;
    return setrlimit(RLIMIT_NOFILE, &lim);
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--tick") == 0) return tick(atol(argv[2]));
    if (argc == 2 && strcmp(argv[1], "--doorbell") == 0) doorbell();
    if (argc < 7 || (strcmp(argv[3], "fixed") != 0 && strcmp(argv[3], "random") != 0)) {
        fputs("umlmicro-launch: usage: umlmicro-launch SIGIGN FILTER fixed|random SOFT:HARD PATH ARGV0 [ARGS...]\n", stderr);
        return 2;
    }
    /* Its own process group, so kill(0, sig) in the guest reaches the guest only, never the supervisor or
     * the user's shell. On a terminal where the supervisor was in the foreground, the guest takes it. */
    pid_t outer = getpgrp();
    if (setpgid(0, 0) != 0) return 126;
    if (isatty(STDIN_FILENO) && tcgetpgrp(STDIN_FILENO) == outer) {
        sigset_t ttou, old;
        sigemptyset(&ttou);
        sigaddset(&ttou, SIGTTOU);
        sigprocmask(SIG_BLOCK, &ttou, &old);
        tcsetpgrp(STDIN_FILENO, getpid());
        sigprocmask(SIG_SETMASK, &old, NULL);
    }

    unsigned long long ignored = strtoull(argv[1], NULL, 16);
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        struct ksigaction sa = { (ignored >> (sig - 1)) & 1 ? SIG_IGN : SIG_DFL, 0, 0, 0 };
        syscall(SYS_rt_sigaction, sig, &sa, NULL, sizeof sa.mask);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    if (set_file_limit(argv[4]) != 0) {
        fprintf(stderr, "umlmicro: cannot set the open-file limit to %s: %s\n", argv[4], strerror(errno));
        return 126;
    }

    /* Guest pid 1 is the init of the guest's pid namespace: orphans are reparented to it, on the host too. */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) return 126;
    if (kill(getpid(), SIGSTOP) != 0) return 126;
    if (strcmp(argv[2], "-") != 0 && install_filter(argv[2]) != 0) {
        fprintf(stderr, "umlmicro: cannot install the seccomp filter: %s\n", strerror(errno));
        return 126;
    }
    if (strcmp(argv[3], "fixed") == 0) {
        int persona = personality(0xffffffff);
        if (persona == -1 || personality((unsigned long)persona | ADDR_NO_RANDOMIZE) == -1) {
            fprintf(stderr, "umlmicro: cannot turn address randomisation off: %s\n", strerror(errno));
            return 126;
        }
    }
    execve(argv[5], argv + 6, environ);
    fprintf(stderr, "umlmicro: %s: %s\n", argv[5], strerror(errno));
    return errno == ENOENT ? 127 : 126;
}
