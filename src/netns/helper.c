/*
 * nsdn-netns: makes and deletes named network namespaces beside nsdn, on the other CPU, so that
 * a lab of hundreds of hosts wires the namespaces made so far while the next ones are made, and
 * unmounts its namespaces while nsdn removes its devices.
 * - Make NAME, as `ip netns add NAME`: an empty file in DIR, a new network namespace (unshare),
 *   bind-mounted on that file. The process moves into each namespace it makes; the mount keeps
 *   it. While there, it opens the namespace and a netlink socket in it for nsdn, which copies
 *   both (pidfd_getfd): nsdn then needs no path lookup (slow while mounts are being made) and
 *   no switch of namespace to reach it. They stay open here until this process ends.
 * - Delete NAME, as `ip netns del NAME`: unmount (detached) and remove the file, keeping the
 *   namespace open until this process ends. The kernel tears a namespace down when its last
 *   user goes: held, none starts before nsdn has removed the lab's devices, which that
 *   teardown would otherwise contend with (nsdn ends the helper after).
 *
 * Usage: nsdn-netns DIR, with a socket at fd 3. Each line read is "NAME" (make) or "-NAME"
 * (delete), the name checked by nsdn; each line written back is that line, a space and an
 * errno, 0 when done, and for a namespace made, the numbers of the two fds when both opened.
 * Ends at end of input, and with nsdn (a namespace made after nsdn died would be in no
 * journal).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
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

/* The namespace this process is in, and a bound rtnetlink socket there: 0 when both opened. */
static int open_here(int *ns, int *sk) {
  *ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  *sk = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  struct sockaddr_nl a = {.nl_family = AF_NETLINK};
  if (*ns >= 0 && *sk >= 0 && bind(*sk, (struct sockaddr *)&a, sizeof a) == 0) return 0;
  if (*ns >= 0) close(*ns);
  if (*sk >= 0) close(*sk);
  return -1;
}

static int delete(const char *file) {
  // Held until exit; without a free fd, the namespace goes at once (slower, not wrong).
  open(file, O_RDONLY | O_CLOEXEC);
  // EINVAL: not a mount point (a file left by an interrupted add)
  if (umount2(file, MNT_DETACH) != 0 && errno != EINVAL) return errno;
  if (unlink(file) != 0 && errno != ENOENT) return errno;
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: nsdn-netns DIR (requests on fd 3)\n");
    return 2;
  }
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  // every namespace made or deleted holds fds: a 1,000-host lab needs more than 1,024
  struct rlimit r;
  if (getrlimit(RLIMIT_NOFILE, &r) == 0) {
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
  }
  FILE *in = fdopen(3, "r");
  if (!in) return 1;
  char line[512], file[4096], out[600];
  while (fgets(line, sizeof line, in)) {
    line[strcspn(line, "\n")] = 0;
    const int del = line[0] == '-';
    const char *name = line + del;
    int err = !path_of(file, sizeof file, argv[1], name) ? EINVAL
              : del                                      ? delete(file)
                                                         : make(file);
    int ns, sk, n;
    if (!err && !del && open_here(&ns, &sk) == 0)
      n = snprintf(out, sizeof out, "%s 0 %d %d\n", line, ns, sk);
    else
      n = snprintf(out, sizeof out, "%s %d\n", line, err);
    if (write(3, out, n) != n) return 1;
  }
  return 0;
}
