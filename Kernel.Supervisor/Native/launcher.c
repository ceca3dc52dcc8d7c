/* umlmicro-launch: the first guest process before it becomes the guest.
 *
 *   umlmicro-launch PATH ARGV0 [ARGS...]
 *
 * It stops itself so the supervisor's tracer thread can PTRACE_SEIZE it with its options, and
 * once resumed it execs PATH with the rest of its arguments and the inherited environment.
 * The exec is the first syscall the kernel sees from the guest. Exit status 127 (as a shell
 * gives) when PATH cannot be executed; the supervisor checks PATH before it starts us. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv) {
    if (argc < 3) {
        fputs("umlmicro-launch: usage: umlmicro-launch PATH ARGV0 [ARGS...]\n", stderr);
        return 2;
    }
    if (kill(getpid(), SIGSTOP) != 0) return 126;
    execve(argv[1], argv + 2, environ);
    fprintf(stderr, "umlmicro: %s: %s\n", argv[1], strerror(errno));
    return errno == ENOENT ? 127 : 126;
}
