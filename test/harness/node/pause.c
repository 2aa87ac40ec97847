/*
 * The pod sandbox's only process (image verso.local/pause:3.10, built by imageBuild.ts with
 * `gcc -static -Os`). It holds the pod's namespaces open and, as PID 1 of a pod that shares
 * its PID namespace, reaps orphans so they do not pile up as zombies. It lives beside the
 * harness, not in deploy/images/: only the local node harness needs a sandbox image; real
 * clusters get theirs from their container runtime.
 *
 *   SIGINT, SIGTERM  exit 0 at once (the runtime is tearing the sandbox down)
 *   SIGCHLD          wait for every child that has exited
 *   -v               print the version and exit
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig) {
  (void)sig;
  _exit(0);
}

static void on_child(int sig) {
  (void)sig;
  int saved = errno; /* a handler must not clobber errno for the code it interrupted */
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
  errno = saved;
}

static void handle(int sig, void (*fn)(int), int flags) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = fn;
  sa.sa_flags = flags;
  sigemptyset(&sa.sa_mask);
  if (sigaction(sig, &sa, NULL) != 0) {
    perror("verso-pause: sigaction");
    _exit(1);
  }
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "-v") == 0) {
    puts("verso-pause 1");
    return 0;
  }
  if (getpid() != 1) fputs("verso-pause: not PID 1, orphans will not be reaped here\n", stderr);
  handle(SIGINT, on_stop, 0);
  handle(SIGTERM, on_stop, 0);
  handle(SIGCHLD, on_child, SA_NOCLDSTOP | SA_RESTART);
  for (;;) pause();
}
