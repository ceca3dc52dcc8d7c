/* umlmicro-launch: the first guest process before it becomes the guest.
 *
 *   umlmicro-launch SIGIGN PATH ARGV0 [ARGS...]
 *
 * SIGIGN is the hex mask of signals the user's shell left ignored (SigIgn of /proc/PID/status): the
 * guest inherits those as ignored and every other signal at its default, as it would have without
 * the supervisor in between (the .NET runtime ignores SIGPIPE, and exec keeps ignored signals).
 * Then it stops itself so the supervisor's tracer thread can PTRACE_SEIZE it with its options, and
 * once resumed it execs PATH with the rest of its arguments and the environment it was given.
 * The exec is the first syscall the kernel sees from the guest. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The kernel's struct sigaction: glibc's signal() refuses 32 and 33, which it reserves for itself. */
struct ksigaction { void (*handler)(int); unsigned long flags; void (*restorer)(void); unsigned long mask; };

extern char **environ;

int main(int argc, char **argv) {
    if (argc < 4) {
        fputs("umlmicro-launch: usage: umlmicro-launch SIGIGN PATH ARGV0 [ARGS...]\n", stderr);
        return 2;
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

    if (kill(getpid(), SIGSTOP) != 0) return 126;
    execve(argv[2], argv + 3, environ);
    fprintf(stderr, "umlmicro: %s: %s\n", argv[2], strerror(errno));
    return errno == ENOENT ? 127 : 126;
}
