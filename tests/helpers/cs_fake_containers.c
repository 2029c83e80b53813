/*
 * Makes M cgroups laid out as Docker's containers (DIR/docker-<64 hex>.scope)
 * and one process in each, in a PID namespace of its own as a container's init
 * is, that checks CAP_SETUID (setuid(0)) and stays. Prints
 * M on stdout once every process has made its check, then waits. On SIGTERM
 * (or SIGINT) it kills its processes, waits for them and removes the cgroups.
 * No runtime knows these containers: the agent's soak test uses them to fill
 * its container cache the way 1,000 short-lived containers would.
 * Usage: cs_fake_containers DIR M   (DIR must not exist; run as root, cgroup v2)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t stopping;

static void on_stop(int sig) {
  (void)sig;
  stopping = 1;
}

static void cgroup_path(char* buf, size_t len, const char* dir, long i) {
  /* 64 hex digits; the first 12 (the short id that names a profile) differ per
   * index and per run, as random ids do. */
  unsigned long short_id = ((unsigned long)i << 24) | ((unsigned long)getpid() & 0xffffffUL);
  snprintf(buf, len, "%s/docker-%012lx%016lx%016lx%020lx.scope", dir, short_id, 0xc5c5c5c5UL,
           0x5eedUL, (unsigned long)i);
}

/* In the child: join the cgroup, make one check, tell the parent, stay. */
static void child(const char* cgroup, int ready_fd) {
  char procs[4200];
  int fd;

  prctl(PR_SET_PDEATHSIG, SIGKILL);
  snprintf(procs, sizeof(procs), "%s/cgroup.procs", cgroup);
  fd = open(procs, O_WRONLY);
  if (fd < 0 || write(fd, "0", 1) != 1) {
    perror("cs_fake_containers: join cgroup");
    _exit(1);
  }
  close(fd);
  if (setuid(0) != 0) perror("cs_fake_containers: setuid");
  if (write(ready_fd, "x", 1) != 1) _exit(1);
  close(ready_fd);
  for (;;) pause();
}

static void cleanup(const char* dir, pid_t* pids, long n) {
  char path[4096];

  for (long i = 0; i < n; i++)
    if (pids[i] > 0) kill(pids[i], SIGKILL);
  for (long i = 0; i < n; i++)
    if (pids[i] > 0) waitpid(pids[i], NULL, 0);
  for (long i = 0; i < n; i++) {
    cgroup_path(path, sizeof(path), dir, i);
    rmdir(path);
  }
  rmdir(dir);
}

int main(int argc, char** argv) {
  const char* dir;
  long n, ready = 0;
  pid_t* pids;
  int ready_pipe[2];
  char path[4096], c;
  struct sigaction sa;

  if (argc != 3) {
    fprintf(stderr, "usage: cs_fake_containers DIR M\n");
    return 2;
  }
  dir = argv[1];
  n = atol(argv[2]);
  pids = calloc(n > 0 ? (size_t)n : 1, sizeof(*pids));
  if (!pids || pipe(ready_pipe) != 0 || mkdir(dir, 0755) != 0) {
    fprintf(stderr, "cs_fake_containers: %s: %s\n", dir, strerror(errno));
    return 1;
  }
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_stop;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  for (long i = 0; i < n && !stopping; i++) {
    cgroup_path(path, sizeof(path), dir, i);
    if (mkdir(path, 0755) != 0) {
      fprintf(stderr, "cs_fake_containers: %s: %s\n", path, strerror(errno));
      break;
    }
    /* fork() into a new PID namespace: the kernel counts it as a container. */
    pids[i] = (pid_t)syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, 0, 0, 0, 0);
    if (pids[i] < 0) {
      perror("cs_fake_containers: clone");
      break;
    }
    if (pids[i] == 0) child(path, ready_pipe[1]);
  }
  close(ready_pipe[1]);
  while (!stopping && ready < n && read(ready_pipe[0], &c, 1) == 1) ready++;
  printf("%ld\n", ready);
  fflush(stdout);
  while (!stopping) pause();
  cleanup(dir, pids, n);
  return 0;
}
