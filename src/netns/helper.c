/*
 * nsdn-netns: makes named network namespaces beside nsdn, on the other CPU, so that a lab of
 * hundreds of hosts wires the namespaces made so far while the next ones are made. Making NAME
 * is `ip netns add NAME`: an empty file in DIR, a new network namespace (unshare), bind-mounted
 * on that file. The process moves into each namespace it makes and keeps none: the mount does.
 *
 * Usage: nsdn-netns DIR, with a socket at fd 3. Each line read is a NAME, checked by nsdn; each
 * line written back is that line, a space and an errno, 0 when done. Ends at end of input, and
 * with nsdn (a namespace made after nsdn died would be in no journal).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <unistd.h>

static int path_of(char *file, size_t size, const char *dir, const char *name) {
  return *name && !strchr(name, '/') && snprintf(file, size, "%s/%s", dir, name) < (int)size;
}

static int make(const char *file) {
  int fd = open(file, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
  if (fd < 0) return errno;
  close(fd);
  if (unshare(CLONE_NEWNET) == 0 &&
      mount("/proc/self/ns/net", file, "none", MS_BIND, NULL) == 0)
    return 0;
  int err = errno;
  unlink(file);
  return err;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: nsdn-netns DIR (requests on fd 3)\n");
    return 2;
  }
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  FILE *in = fdopen(3, "r");
  if (!in) return 1;
  char line[512], file[4096], out[600];
  while (fgets(line, sizeof line, in)) {
    line[strcspn(line, "\n")] = 0;
    int err = path_of(file, sizeof file, argv[1], line) ? make(file) : EINVAL;
    int n = snprintf(out, sizeof out, "%s %d\n", line, err);
    if (write(3, out, n) != n) return 1;
  }
  return 0;
}
