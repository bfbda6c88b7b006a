/*
 * nsdn-init: the container's PID 1, and the helper `nsdn exec` runs through.
 *
 * Node is multithreaded, so it cannot join a user or mount namespace, run code between fork and
 * exec, or mount /proc of a new PID namespace. This small single-threaded program does those
 * steps; Node plans them (src/runtime/launch.ts) and coordinates over a socket on fd 3.
 *
 *   nsdn-init run
 *     fd 3: the sync socket. Node sends the plan (u32 length, then NUL-terminated fields).
 *     1. unshare(CLONE_NEWUSER) if asked; say "U", wait while Node writes uid/gid maps.
 *     2. unshare the other namespaces; fork: the child is PID 1 of the new PID namespace.
 *        The parent says "P <pid>" and exits (no process of ours stays outside).
 *     3. PID 1 runs the plan's mounts, pivot_root and hostname; says "R"; waits for "G" (Node
 *        attaches networks meanwhile); starts the payload with the kept capabilities and
 *        no_new_privs; says "S" (or "E <what>: <error>" on any failure).
 *     4. PID 1 forwards signals to the payload, reaps every child, and when the payload ends
 *        writes its status to the exit file and "X <status>" to the socket, then exits with it.
 *
 *   nsdn-init exec PID CAPHEX NCG [-t] [-w DIR] -- CMD [ARGS...]
 *     joins every namespace of PID (user first), writes "0" to fds 3..3+NCG-1 (cgroup.procs
 *     files Node opened: the helper joins those cgroups), forks CMD with only the kept
 *     capabilities and no_new_privs, forwards signals and exits with CMD's status. -t gives
 *     CMD a new pty of the container and relays the terminal to it. -C FD: resize messages
 *     come on FD (below); -s COLSxROWS: the pty's first size.
 *
 *   nsdn-init pty NETNS COLSxROWS [-C FD] -- CMD [ARGS...]
 *     the web terminal of a lab node: enters the network namespace file NETNS ("-": stay), in
 *     a mount namespace of its own with that namespace's /sys (as `ip netns exec` does), and
 *     runs CMD on a new pty relayed to stdin/stdout, with the caller's privileges.
 *
 *   Resize messages (-C): lines "COLS ROWS\n"; each sets the pty's size (the shell gets
 *   SIGWINCH from the kernel).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include <grp.h>

#define SYNC 3

static int sync_fd = -1;

/* A line to Node; MSG_NOSIGNAL: a detached container's Node is gone, so EPIPE is normal. */
static void say(const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
  va_end(ap);
  if (n < 0 || sync_fd < 0) return;
  if (n > (int)sizeof buf - 2) n = sizeof buf - 2;
  buf[n++] = '\n';
  (void)send(sync_fd, buf, n, MSG_NOSIGNAL);
}

/* Report "E what: error" to Node (or stderr without one) and exit. */
static void die(const char *what, const char *arg) {
  int e = errno;
  if (sync_fd >= 0) say("E %s %s: %s", what, arg ? arg : "", strerror(e));
  else fprintf(stderr, "nsdn-init: %s %s: %s\n", what, arg ? arg : "", strerror(e));
  _exit(127);
}

/* Wait for one byte from Node; EOF means Node gave up: stop here. */
static char wait_go(void) {
  char c;
  ssize_t n;
  do n = read(sync_fd, &c, 1);
  while (n < 0 && errno == EINTR);
  if (n != 1) _exit(125);
  return c;
}

/* ---- the plan: fields are NUL-terminated strings ---- */

static char *plan, *plan_end;

static char *field(void) {
  if (plan >= plan_end) { errno = EINVAL; die("plan", "truncated"); }
  char *s = plan;
  plan += strlen(s) + 1;
  return s;
}

static unsigned long num(void) { return strtoul(field(), NULL, 0); }

static char *opt(char *s) { return strcmp(s, "-") == 0 ? NULL : s; }

static void read_plan(void) {
  uint32_t len;
  if (read(sync_fd, &len, 4) != 4) die("plan", "length");
  if (len > (1u << 24)) { errno = E2BIG; die("plan", "length"); }
  plan = malloc(len);
  if (!plan) die("plan", "malloc");
  for (uint32_t got = 0; got < len;) {
    ssize_t n = read(sync_fd, plan + got, len - got);
    if (n <= 0) die("plan", "read");
    got += n;
  }
  plan_end = plan + len;
}

/* ---- capabilities ---- */

static void drop_caps(uint64_t keep) {
  for (int cap = 0; cap < 64; cap++) {
    if (keep >> cap & 1) continue;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
      if (errno == EINVAL) break; /* past the kernel's last capability */
      die("capbset drop", NULL);
    }
  }
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct d[2];
  uint32_t lo = (uint32_t)keep, hi = (uint32_t)(keep >> 32);
  d[0].effective = d[0].permitted = d[0].inheritable = lo;
  d[1].effective = d[1].permitted = d[1].inheritable = hi;
  if (syscall(SYS_capset, &h, d) < 0) die("capset", NULL);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) die("no_new_privs", NULL);
}

/* ---- signals ---- */

static const int forwarded[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH,
                                SIGCONT, SIGTSTP};

static sigset_t blocked_set(void) {
  sigset_t s;
  sigemptyset(&s);
  for (size_t i = 0; i < sizeof forwarded / sizeof *forwarded; i++) sigaddset(&s, forwarded[i]);
  sigaddset(&s, SIGCHLD);
  return s;
}

static void unblock_all(void) {
  sigset_t s;
  sigemptyset(&s);
  sigprocmask(SIG_SETMASK, &s, NULL);
  signal(SIGPIPE, SIG_DFL);
}

static int status_code(int st) {
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/*
 * Forward signals to child and reap every process until child ends; return its status code.
 * Signals arrive through sigwaitinfo, so nothing runs in a handler.
 */
/* Apply the resize messages read from ctl; -1 when it ended. */
static int resize_from(int ctl, int master) {
  static char line[64];
  static size_t used;
  ssize_t n = read(ctl, line + used, sizeof line - 1 - used);
  if (n <= 0) return -1;
  used += n;
  char *nl;
  while ((nl = memchr(line, '\n', used))) {
    *nl = 0;
    unsigned cols, rows;
    if (sscanf(line, "%u %u", &cols, &rows) == 2 && cols && rows && cols < 10000 && rows < 10000) {
      struct winsize ws = {.ws_row = rows, .ws_col = cols};
      ioctl(master, TIOCSWINSZ, &ws);
    }
    used -= nl + 1 - line;
    memmove(line, nl + 1, used);
  }
  if (used == sizeof line - 1) used = 0; /* a line too long to be ours */
  return 0;
}

static int supervise(pid_t child, int relay_master, int ctl) {
  sigset_t s = blocked_set();
  int in = 0; /* our stdin, relayed until it ends */
  for (;;) {
    siginfo_t si;
    int sig;
    if (relay_master >= 0) {
      /* pty mode: poll the terminal and the master; signals are checked between polls */
      struct timespec zero = {0, 0};
      sig = sigtimedwait(&s, &si, &zero);
      if (sig < 0) {
        struct pollfd p[3] = {{in, POLLIN, 0}, {relay_master, POLLIN, 0}, {ctl, POLLIN, 0}};
        if (poll(p, 3, 50) > 0) {
          if (p[2].revents & (POLLIN | POLLHUP) && resize_from(ctl, relay_master) < 0) ctl = -1;
          char buf[4096];
          if (p[0].revents & (POLLIN | POLLHUP)) {
            ssize_t n = read(0, buf, sizeof buf);
            if (n > 0) (void)!write(relay_master, buf, n);
            else { /* end of input: the terminal's end-of-file character, then stop polling it */
              (void)!write(relay_master, "\x04", 1);
              in = -1;
            }
          }
          if (p[1].revents & (POLLIN | POLLHUP)) {
            ssize_t n = read(relay_master, buf, sizeof buf);
            if (n > 0) (void)!write(1, buf, n);
          }
        }
        continue;
      }
    } else {
      sig = sigwaitinfo(&s, &si);
      if (sig < 0) continue;
    }
    if (sig == SIGWINCH && relay_master >= 0) {
      struct winsize ws;
      if (ioctl(0, TIOCGWINSZ, &ws) == 0) ioctl(relay_master, TIOCSWINSZ, &ws);
      continue;
    }
    if (sig != SIGCHLD) {
      kill(child, sig);
      continue;
    }
    for (;;) {
      int st;
      pid_t p = waitpid(-1, &st, WNOHANG);
      if (p <= 0) break;
      if (p == child) {
        if (relay_master >= 0) { /* what the command wrote last */
          char buf[4096];
          ssize_t n;
          fcntl(relay_master, F_SETFL, O_NONBLOCK);
          while ((n = read(relay_master, buf, sizeof buf)) > 0) (void)!write(1, buf, n);
        }
        return status_code(st);
      }
    }
  }
}

/* Start argv; a failed exec is reported through a close-on-exec pipe. */
static pid_t start(char **argv, char **envp, const char *cwd, uint64_t caps, int pty_slave,
                   int *exec_errno) {
  int ep[2];
  if (pipe2(ep, O_CLOEXEC) < 0) die("pipe", NULL);
  pid_t pid = fork();
  if (pid < 0) die("fork", NULL);
  if (pid == 0) {
    close(ep[0]);
    unblock_all();
    if (pty_slave >= 0) {
      setsid();
      ioctl(pty_slave, TIOCSCTTY, 0);
      dup2(pty_slave, 0), dup2(pty_slave, 1), dup2(pty_slave, 2);
      if (pty_slave > 2) close(pty_slave);
    }
    int e = 0;
    if (cwd && chdir(cwd) < 0) e = errno;
    if (!e) {
      if (caps != UINT64_MAX) drop_caps(caps); /* UINT64_MAX: keep the caller's privileges */
      if (envp) environ = envp;
      execvp(argv[0], argv);
      e = errno;
    }
    (void)!write(ep[1], &e, sizeof e);
    _exit(127);
  }
  close(ep[1]);
  int e = 0;
  *exec_errno = read(ep[0], &e, sizeof e) == sizeof e ? e : 0;
  close(ep[0]);
  return pid;
}

/* ---- run: a new container ---- */

static int exit_fd = -1;

static void pid1(void) {
  char **argv = NULL, **envp = NULL, *cwd = NULL;
  uint64_t caps = 0;
  size_t nenv = 0;
  while (plan < plan_end) {
    char *k = field();
    if (!strcmp(k, "mount")) {
      char *src = opt(field()), *dst = field(), *type = opt(field());
      unsigned long flags = num();
      char *data = opt(field());
      if (mount(src, dst, type, flags, data) < 0) die("mount", dst);
    } else if (!strcmp(k, "mkdir")) {
      char *p = field(); /* mkdir -p */
      for (char *s = p + 1; *s; s++)
        if (*s == '/') {
          *s = 0;
          if (mkdir(p, 0755) < 0 && errno != EEXIST) die("mkdir", p);
          *s = '/';
        }
      if (mkdir(p, 0755) < 0 && errno != EEXIST) die("mkdir", p);
    } else if (!strcmp(k, "touch")) {
      char *p = field();
      int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      if (fd < 0) die("touch", p);
      close(fd);
    } else if (!strcmp(k, "symlink")) {
      char *t = field(), *p = field();
      if (symlink(t, p) < 0 && errno != EEXIST) die("symlink", p);
    } else if (!strcmp(k, "pivot")) {
      char *root = field();
      /* pivot_root(".", "."): the old root ends up on top of the new one; detach it */
      if (chdir(root) < 0) die("chdir", root);
      if (syscall(SYS_pivot_root, ".", ".") < 0) die("pivot_root", root);
      if (umount2(".", MNT_DETACH) < 0) die("umount old root", NULL);
      if (chdir("/") < 0) die("chdir", "/");
    } else if (!strcmp(k, "hostname")) {
      char *h = field();
      if (sethostname(h, strlen(h)) < 0) die("sethostname", h);
    } else if (!strcmp(k, "caps")) {
      caps = strtoull(field(), NULL, 16);
    } else if (!strcmp(k, "cwd")) {
      cwd = field();
    } else if (!strcmp(k, "env")) {
      envp = realloc(envp, (nenv + 2) * sizeof *envp);
      envp[nenv++] = field();
      envp[nenv] = NULL;
    } else if (!strcmp(k, "argv")) {
      unsigned long n = num();
      argv = calloc(n + 1, sizeof *argv);
      for (unsigned long i = 0; i < n; i++) argv[i] = field();
    } else {
      errno = EINVAL;
      die("plan: unknown step", k);
    }
  }
  if (!argv || !argv[0]) { errno = EINVAL; die("plan", "no command"); }
  if (!envp) envp = calloc(1, sizeof *envp);
  say("R");
  if (wait_go() != 'G') _exit(125);
  int e;
  pid_t child = start(argv, envp, cwd, caps, -1, &e);
  if (e) {
    errno = e;
    die("exec", argv[0]);
  }
  say("S %d", (int)child);
  int code = supervise(child, -1, -1);
  if (exit_fd >= 0) {
    dprintf(exit_fd, "%d\n", code);
    close(exit_fd);
  }
  say("X %d", code);
  _exit(code);
}

static int cmd_run(void) {
  sync_fd = SYNC;
  fcntl(sync_fd, F_SETFD, FD_CLOEXEC);
  read_plan();
  /* the steps before the fork come first in the plan: ns, exitfile */
  unsigned long flags = 0;
  for (;;) {
    char *save = plan, *k = field();
    if (!strcmp(k, "ns")) flags = num();
    else if (!strcmp(k, "exitfile")) {
      char *p = field();
      /* opened here, as the host's root, before any user namespace or pivot hides it */
      exit_fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (exit_fd < 0) die("open", p);
    } else {
      plan = save;
      break;
    }
  }
  if (flags & CLONE_NEWUSER) {
    if (unshare(CLONE_NEWUSER) < 0) die("unshare", "user");
    say("U");
    if (wait_go() != 'M') _exit(125);
    /* root of the new namespace (the maps map it to an unprivileged host id) */
    if (setresgid(0, 0, 0) < 0) die("setresgid", "0");
    if (setgroups(0, NULL) < 0 && errno != EPERM) die("setgroups", NULL);
    if (setresuid(0, 0, 0) < 0) die("setresuid", "0");
  }
  if (unshare(flags & ~CLONE_NEWUSER) < 0) die("unshare", NULL);
  sigset_t s = blocked_set();
  sigprocmask(SIG_BLOCK, &s, NULL);
  signal(SIGPIPE, SIG_IGN);
  pid_t pid = fork();
  if (pid < 0) die("fork", NULL);
  if (pid > 0) {
    say("P %d", (int)pid);
    _exit(0);
  }
  pid1();
  return 0;
}

/* ---- exec: a command in a running container ---- */

static const char *const ns_order[] = {"user", "ipc", "uts", "net", "pid", "cgroup", "mnt"};

static int cmd_exec(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: nsdn-init exec PID CAPHEX NCG [-t] [-w DIR] -- CMD...\n");
    return 125;
  }
  const char *pid = argv[2];
  uint64_t caps = strtoull(argv[3], NULL, 16);
  int ncg = atoi(argv[4]), tty = 0, i = 5, ctl = -1;
  unsigned cols = 0, rows = 0;
  const char *cwd = "/";
  for (; i < argc && strcmp(argv[i], "--"); i++) {
    if (!strcmp(argv[i], "-t")) tty = 1;
    else if (!strcmp(argv[i], "-w") && i + 1 < argc) cwd = argv[++i];
    else if (!strcmp(argv[i], "-C") && i + 1 < argc) ctl = atoi(argv[++i]);
    else if (!strcmp(argv[i], "-s") && i + 1 < argc) sscanf(argv[++i], "%ux%u", &cols, &rows);
  }
  if (i + 1 >= argc) {
    fprintf(stderr, "nsdn-init exec: no command\n");
    return 125;
  }
  char **cmd = argv + i + 1;
  for (int k = 0; k < ncg; k++) {
    if (write(SYNC + k, "0", 1) != 1) die("join cgroup", NULL);
    close(SYNC + k);
  }
  int fds[7];
  int joined_user = 0;
  for (int k = 0; k < 7; k++) {
    char p[64], self[64];
    struct stat a, b;
    snprintf(p, sizeof p, "/proc/%s/ns/%s", pid, ns_order[k]);
    snprintf(self, sizeof self, "/proc/self/ns/%s", ns_order[k]);
    fds[k] = -1;
    if (stat(p, &a) < 0) die("stat", p);
    if (stat(self, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev) continue;
    fds[k] = open(p, O_RDONLY | O_CLOEXEC);
    if (fds[k] < 0) die("open", p);
  }
  for (int k = 0; k < 7; k++) {
    if (fds[k] < 0) continue;
    if (setns(fds[k], 0) < 0) die("setns", ns_order[k]);
    close(fds[k]);
    if (k == 0) joined_user = 1;
  }
  if (joined_user) {
    if (setresgid(0, 0, 0) < 0) die("setresgid", "0");
    setgroups(0, NULL);
    if (setresuid(0, 0, 0) < 0) die("setresuid", "0");
  }
  sigset_t s = blocked_set();
  sigprocmask(SIG_BLOCK, &s, NULL);
  int master = -1, slave = -1;
  struct termios saved;
  int restore = 0;
  if (tty) {
    master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0) die("openpt", "/dev/ptmx");
    slave = open(ptsname(master), O_RDWR | O_NOCTTY);
    if (slave < 0) die("open", ptsname(master));
    struct winsize ws = {.ws_row = rows, .ws_col = cols};
    if (cols && rows) ioctl(slave, TIOCSWINSZ, &ws);
    else if (ioctl(0, TIOCGWINSZ, &ws) == 0) ioctl(slave, TIOCSWINSZ, &ws);
    if (isatty(0) && tcgetattr(0, &saved) == 0) {
      struct termios raw = saved;
      cfmakeraw(&raw);
      tcsetattr(0, TCSANOW, &raw);
      restore = 1;
    }
  }
  int e;
  pid_t child = start(cmd, NULL, cwd, caps, slave, &e);
  if (slave >= 0) close(slave);
  if (e) {
    if (restore) tcsetattr(0, TCSANOW, &saved);
    fprintf(stderr, "nsdn exec: cannot run %s: %s\n", cmd[0], strerror(e));
    return e == ENOENT ? 127 : 126;
  }
  int code = supervise(child, master, ctl);
  if (restore) tcsetattr(0, TCSANOW, &saved);
  return code;
}

/* ---- pty: a shell in a network namespace, for the web terminal ---- */

static int cmd_pty(int argc, char **argv) {
  int i = 4, ctl = -1;
  unsigned cols = 80, rows = 24;
  if (argc < 6) {
    fprintf(stderr, "usage: nsdn-init pty NETNS COLSxROWS [-C FD] -- CMD...\n");
    return 125;
  }
  sscanf(argv[3], "%ux%u", &cols, &rows);
  for (; i < argc && strcmp(argv[i], "--"); i++)
    if (!strcmp(argv[i], "-C") && i + 1 < argc) ctl = atoi(argv[++i]);
  if (i + 1 >= argc) {
    fprintf(stderr, "nsdn-init pty: no command\n");
    return 125;
  }
  if (ctl >= 0) fcntl(ctl, F_SETFD, FD_CLOEXEC);
  if (strcmp(argv[2], "-")) {
    int fd = open(argv[2], O_RDONLY | O_CLOEXEC);
    if (fd < 0) die("open", argv[2]);
    if (setns(fd, CLONE_NEWNET) < 0) die("setns", argv[2]);
    close(fd);
    /* the namespace's own /sys (ls /sys/class/net), in a mount namespace that ends with us */
    if (unshare(CLONE_NEWNS) == 0 && mount("", "/", NULL, MS_SLAVE | MS_REC, NULL) == 0 &&
        umount2("/sys", MNT_DETACH) == 0)
      (void)mount("sysfs", "/sys", "sysfs", 0, NULL);
  }
  sigset_t s = blocked_set();
  sigprocmask(SIG_BLOCK, &s, NULL);
  signal(SIGPIPE, SIG_IGN);
  int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0) die("openpt", "/dev/ptmx");
  int slave = open(ptsname(master), O_RDWR | O_NOCTTY);
  if (slave < 0) die("open", ptsname(master));
  struct winsize ws = {.ws_row = rows, .ws_col = cols};
  ioctl(slave, TIOCSWINSZ, &ws);
  const char *home = getenv("HOME");
  int e;
  pid_t child = start(argv + i + 1, NULL, home ? home : "/", UINT64_MAX, slave, &e);
  close(slave);
  if (e) {
    fprintf(stderr, "nsdn-init pty: cannot run %s: %s\n", argv[i + 1], strerror(e));
    return e == ENOENT ? 127 : 126;
  }
  return supervise(child, master, ctl);
}

int main(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "run")) return cmd_run();
  if (argc >= 2 && !strcmp(argv[1], "exec")) return cmd_exec(argc, argv);
  if (argc >= 2 && !strcmp(argv[1], "pty")) return cmd_pty(argc, argv);
  fprintf(stderr, "usage: nsdn-init run | exec PID CAPHEX NCG [-t] [-w DIR] -- CMD... | "
                  "pty NETNS COLSxROWS [-C FD] -- CMD...\n");
  return 125;
}
