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
 *        The parent says "P <pid>" and exits (no process of ours stays outside). Node names the
 *        netns and attaches the networks meanwhile, then sends "G".
 *     3. PID 1 runs the plan's mounts, pivot_root and hostname; waits for "G"; starts the
 *        payload with the kept capabilities and no_new_privs; says "S" (or "E <what>: <error>"
 *        on any failure).
 *     4. PID 1 forwards signals to the payload, reaps every child, serves exec requests on the
 *        exec socket (made before any namespace, so the host reaches it; see `exec` below),
 *        and when the payload ends writes its status to the exit file and "X <status>" to the
 *        socket, then exits with it.
 *
 *   nsdn-init exec SOCK [-t] [-w DIR] -- CMD [ARGS...]
 *     asks the container's init, through its exec socket SOCK, to start CMD (with our
 *     environment and stdio): init's child is in every namespace and cgroup of the container at
 *     once, with no setns or cgroup migration (a v1 cgroup.procs write per hierarchy costs a
 *     kernel RCU grace period), which makes exec about twice as fast as joining them. We forward
 *     signals to CMD and exit with its status. -t: init gives CMD a new pty of the container
 *     and sends us its master, which we relay to our terminal; the end of our input reaches
 *     CMD as the terminal's end-of-file. -s COLSxROWS: the pty's first size (else our
 *     terminal's); -C FD: resize messages come on FD (below).
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
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
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
 * Start argv. -1 with errno when it cannot even fork (a pids limit): not fatal to init. A failed
 * exec is reported through a close-on-exec pipe. `stdio`: three fds (not 0-2) for CMD's 0-2.
 */
static pid_t start(char **argv, char **envp, const char *cwd, uint64_t caps, const int *stdio,
                   int pty_slave, int *exec_errno) {
  int ep[2];
  if (pipe2(ep, O_CLOEXEC) < 0) return -1;
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    close(ep[0]), close(ep[1]);
    errno = e;
    return -1;
  }
  if (pid == 0) {
    close(ep[0]);
    unblock_all();
    if (pty_slave >= 0) {
      setsid();
      ioctl(pty_slave, TIOCSCTTY, 0);
      dup2(pty_slave, 0), dup2(pty_slave, 1), dup2(pty_slave, 2);
      if (pty_slave > 2) close(pty_slave);
    } else if (stdio)
      for (int i = 0; i < 3; i++) dup2(stdio[i], i);
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

/* ---- the exec socket: init starts commands for `nsdn-init exec` clients ---- */

/*
 * A request is a u32 length and NUL-terminated fields, as the plan: "cwd" DIR, "env" K=V
 * (repeated), "tty", "argv" N ARG... With no tty, the client's stdin, stdout and stderr come
 * attached (SCM_RIGHTS). Replies are lines: "S <pid>" (with a tty, the pty master attached) or
 * "E <errno>", then "X <status>" when the command ends. The client writes "K <signal>" lines to
 * signal it; closing the connection leaves it running.
 */
#define MAX_CONNS 64

static int exec_lfd = -1;
static uint64_t kept_caps;
static struct conn {
  int fd;
  pid_t pid; /* 0 until the request is served */
} conns[MAX_CONNS];
static int nconns;

static int listen_on(const char *path) {
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof a.sun_path) {
    errno = ENAMETOOLONG;
    die("exec socket", path);
  }
  strcpy(a.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket", path);
  unlink(path);
  if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) die("bind", path);
  if (chmod(path, 0600) < 0) die("chmod", path);
  if (listen(fd, 16) < 0) die("listen", path);
  return fd;
}

/* A line, with an fd attached when fd >= 0. */
static void send_line(int sock, int fd, const char *fmt, ...) {
  char buf[64];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  struct iovec iov = {buf, n};
  char cbuf[CMSG_SPACE(sizeof(int))];
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
  if (fd >= 0) {
    m.msg_control = cbuf, m.msg_controllen = sizeof cbuf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET, c->cmsg_type = SCM_RIGHTS, c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
  }
  (void)sendmsg(sock, &m, MSG_NOSIGNAL);
}

static char *next_field(char **p, char *end) {
  if (*p >= end) return NULL;
  char *s = *p;
  *p += strlen(s) + 1;
  return s;
}

/* Read conns[i]'s request and start its command; false if the connection is done. */
static int serve_request(int i) {
  int sock = conns[i].fd, fds[3] = {-1, -1, -1}, nfds = 0, e = EINVAL;
  int master = -1, slave = -1, tty = 0;
  uint32_t len = 0;
  char cbuf[CMSG_SPACE(3 * sizeof(int))], *req = NULL, *cwd = NULL, **argv = NULL, **envp = NULL;
  size_t nenv = 0;
  struct iovec iov = {&len, sizeof len};
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                     .msg_controllen = sizeof cbuf};
  ssize_t n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC | MSG_WAITALL);
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      memcpy(fds, CMSG_DATA(c), (nfds > 3 ? 3 : nfds) * sizeof(int));
    }
  if (n != sizeof len || len > (1u << 20) || !(req = malloc(len + 1))) goto reply;
  if (len && recv(sock, req, len, MSG_WAITALL) != (ssize_t)len) goto reply;
  req[len] = 0;
  char *p = req, *end = req + len, *k;
  while ((k = next_field(&p, end))) {
    if (!strcmp(k, "cwd")) cwd = next_field(&p, end);
    else if (!strcmp(k, "tty")) tty = 1;
    else if (!strcmp(k, "env")) {
      char *v = next_field(&p, end);
      char **grown = realloc(envp, (nenv + 2) * sizeof *envp);
      if (!v || !grown) goto reply;
      envp = grown, envp[nenv++] = v, envp[nenv] = NULL;
    } else if (!strcmp(k, "argv")) {
      char *c = next_field(&p, end);
      unsigned long na = c ? strtoul(c, NULL, 10) : 0;
      if (!na || na > len || !(argv = calloc(na + 1, sizeof *argv))) goto reply;
      for (unsigned long j = 0; j < na; j++)
        if (!(argv[j] = next_field(&p, end))) goto reply;
    } else goto reply;
  }
  if (!argv || (!tty && nfds != 3)) goto reply;
  if (!envp && !(envp = calloc(1, sizeof *envp))) goto reply;
  if (tty) {
    master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0 ||
        (slave = open(ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0) {
      e = errno;
      goto reply;
    }
  }
  pid_t pid = start(argv, envp, cwd, kept_caps, tty ? NULL : fds, slave, &e);
  if (pid < 0) e = errno;
  else if (!e) conns[i].pid = pid;
reply:
  if (e) send_line(sock, -1, "E %d\n", e);
  else send_line(sock, master, "S %d\n", (int)conns[i].pid);
  for (int j = 0; j < nfds && j < 3; j++) close(fds[j]);
  if (master >= 0) close(master);
  if (slave >= 0) close(slave);
  free(req), free(argv), free(envp);
  return !e;
}

/* "K <signal>" lines from conns[i]'s client; false once it hung up. */
static int serve_signals(int i) {
  char buf[128];
  ssize_t n = read(conns[i].fd, buf, sizeof buf - 1);
  if (n <= 0) return 0;
  buf[n] = 0;
  for (char *p = buf; (p = strchr(p, 'K')); p++) {
    int sig = atoi(p + 1);
    if (sig > 0 && sig < 65) kill(conns[i].pid, sig);
  }
  return 1;
}

/*
 * PID 1's loop: forward signals to the payload, reap every child (an exec'd command's status
 * goes to its client), serve the exec socket; return once the payload ends, with its status.
 */
static int serve(pid_t child) {
  sigset_t s = blocked_set();
  int sfd = signalfd(-1, &s, SFD_CLOEXEC);
  if (sfd < 0) die("signalfd", NULL);
  for (;;) {
    struct pollfd p[2 + MAX_CONNS];
    int polled = nconns;
    p[0] = (struct pollfd){sfd, POLLIN, 0};
    p[1] = (struct pollfd){nconns < MAX_CONNS ? exec_lfd : -1, POLLIN, 0};
    for (int i = 0; i < polled; i++) p[2 + i] = (struct pollfd){conns[i].fd, POLLIN, 0};
    if (poll(p, 2 + polled, -1) < 0) continue;
    if (p[0].revents & POLLIN) {
      struct signalfd_siginfo si;
      if (read(sfd, &si, sizeof si) != sizeof si) continue;
      if ((int)si.ssi_signo != SIGCHLD) {
        kill(child, si.ssi_signo);
        continue;
      }
      int st;
      pid_t pid;
      while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        if (pid == child) return status_code(st);
        for (int i = 0; i < nconns; i++)
          if (conns[i].pid == pid && conns[i].fd >= 0) {
            send_line(conns[i].fd, -1, "X %d\n", status_code(st));
            close(conns[i].fd);
            conns[i].fd = -1;
          }
      }
    }
    for (int i = 0; i < polled; i++) {
      if (conns[i].fd < 0 || !(p[2 + i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      if (conns[i].pid ? serve_signals(i) : serve_request(i)) continue;
      close(conns[i].fd);
      conns[i].fd = -1;
    }
    int kept = 0;
    for (int i = 0; i < nconns; i++)
      if (conns[i].fd >= 0) conns[kept++] = conns[i];
    nconns = kept;
    if (p[1].revents & POLLIN) {
      int c = accept4(exec_lfd, NULL, NULL, SOCK_CLOEXEC);
      if (c < 0) continue;
      /* a request comes at once: a client that stalls must not stall init */
      struct timeval tv = {2, 0};
      setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      conns[nconns++] = (struct conn){c, 0};
    }
  }
}

/* ---- run: a new container ---- */

static int exit_fd = -1;

static void pid1(void) {
  char **argv = NULL, **envp = NULL, *cwd = NULL;
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
      kept_caps = strtoull(field(), NULL, 16);
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
  if (wait_go() != 'G') _exit(125);
  int e = 0;
  pid_t child = start(argv, envp, cwd, kept_caps, NULL, -1, &e);
  if (child < 0) die("fork", argv[0]);
  if (e) {
    errno = e;
    die("exec", argv[0]);
  }
  say("S %d", (int)child);
  int code = serve(child);
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
  /* the steps before the fork come first in the plan: ns, exitfile, execsock */
  unsigned long flags = 0;
  for (;;) {
    char *save = plan, *k = field();
    if (!strcmp(k, "ns")) flags = num();
    else if (!strcmp(k, "exitfile")) {
      char *p = field();
      /* opened here, as the host's root, before any user namespace or pivot hides it */
      exit_fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (exit_fd < 0) die("open", p);
    } else if (!strcmp(k, "execsock")) {
      exec_lfd = listen_on(field()); /* on the host's filesystem, as its root: it reaches us */
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

/* ---- exec: a command in a running container, started by its init ---- */

static char *rq;
static size_t rq_len, rq_cap;

static void put(const char *f) {
  size_t n = strlen(f) + 1;
  if (rq_len + n > rq_cap) {
    rq_cap = (rq_len + n) * 2;
    if (!(rq = realloc(rq, rq_cap))) die("malloc", NULL);
  }
  memcpy(rq + rq_len, f, n);
  rq_len += n;
}

/* Our stdin, stdout and stderr, to attach to the request; a closed one becomes /dev/null. */
static void send_request(int sock, int tty) {
  uint32_t len = rq_len;
  struct iovec iov[2] = {{&len, sizeof len}, {rq, rq_len}};
  int fds[3] = {0, 1, 2};
  char cbuf[CMSG_SPACE(sizeof fds)];
  struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2};
  if (!tty) {
    for (int i = 0; i < 3; i++)
      if (fcntl(i, F_GETFD) < 0) fds[i] = open("/dev/null", O_RDWR | O_CLOEXEC);
    m.msg_control = cbuf, m.msg_controllen = sizeof cbuf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET, c->cmsg_type = SCM_RIGHTS, c->cmsg_len = CMSG_LEN(sizeof fds);
    memcpy(CMSG_DATA(c), fds, sizeof fds);
  }
  if (sendmsg(sock, &m, MSG_NOSIGNAL) != (ssize_t)(sizeof len + rq_len)) die("send", "request");
}

/* Copy what is readable on `from` to `to`; false at its end (EOF, or EIO: the pty's slave is gone). */
static int relay(int from, int to) {
  char buf[4096];
  ssize_t n = read(from, buf, sizeof buf);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return 1;
  if (n <= 0) return 0;
  for (ssize_t off = 0; off < n;) {
    ssize_t w = write(to, buf + off, n - off);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return 0;
    off += w;
  }
  return 1;
}

/*
 * Our input ended: CMD reads the end-of-file character, as from a terminal. It is sent again each
 * time CMD's terminal changes between canonical and raw mode, since a switch turns one that was
 * still queued into a plain byte (a shell's line editor goes raw to read, cooked to run): stdin
 * stays at its end for every later read, not only the first.
 */
static void send_eof(int master, int *last_canon) {
  struct termios t;
  if (tcgetattr(master, &t) < 0) return;
  int canon = (t.c_lflag & ICANON) != 0;
  if (canon == *last_canon) return;
  *last_canon = canon;
  char c = canon && t.c_cc[VEOF] != _POSIX_VDISABLE ? t.c_cc[VEOF] : '\x04';
  (void)!write(master, &c, 1);
}

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

/* The pty's first size: COLSxROWS when given, else our own terminal's. */
static void first_size(int master, unsigned cols, unsigned rows) {
  struct winsize ws = {.ws_row = rows, .ws_col = cols};
  if (cols && rows) ioctl(master, TIOCSWINSZ, &ws);
  else if (ioctl(0, TIOCGWINSZ, &ws) == 0) ioctl(master, TIOCSWINSZ, &ws);
}

static int cmd_exec(int argc, char **argv) {
  int tty = 0, i = 3, ctl = -1;
  unsigned cols = 0, rows = 0;
  const char *cwd = NULL;
  for (; i < argc && strcmp(argv[i], "--"); i++) {
    if (!strcmp(argv[i], "-t")) tty = 1;
    else if (!strcmp(argv[i], "-w") && i + 1 < argc) cwd = argv[++i];
    else if (!strcmp(argv[i], "-C") && i + 1 < argc) ctl = atoi(argv[++i]);
    else if (!strcmp(argv[i], "-s") && i + 1 < argc) sscanf(argv[++i], "%ux%u", &cols, &rows);
  }
  if (ctl >= 0) fcntl(ctl, F_SETFD, FD_CLOEXEC);
  if (argc < 3 || i + 1 >= argc) {
    fprintf(stderr, "usage: nsdn-init exec SOCK [-t] [-w DIR] -- CMD...\n");
    return 125;
  }
  char **cmd = argv + i + 1;
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  snprintf(a.sun_path, sizeof a.sun_path, "%s", argv[2]);
  int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (sock < 0 || connect(sock, (struct sockaddr *)&a, sizeof a) < 0) {
    fprintf(stderr, "nsdn exec: the container's init does not answer on %s: %s\n", argv[2],
            strerror(errno));
    return 125;
  }
  if (cwd) put("cwd"), put(cwd);
  for (char **e = environ; *e; e++) put("env"), put(*e);
  if (tty) put("tty");
  char n[16];
  snprintf(n, sizeof n, "%d", argc - i - 1);
  put("argv"), put(n);
  for (char **c = cmd; *c; c++) put(*c);
  sigset_t s = blocked_set();
  sigprocmask(SIG_BLOCK, &s, NULL);
  int sfd = signalfd(-1, &s, SFD_CLOEXEC);
  if (sfd < 0) die("signalfd", NULL);
  send_request(sock, tty);

  int master = -1, started = 0, code = -1, in = tty ? 0 : -1, last_canon = -1;
  struct termios saved;
  int restore = 0;
  char lines[256];
  size_t got = 0;
  while (code < 0) {
    struct pollfd p[5] = {{sfd, POLLIN, 0},
                          {sock, POLLIN, 0},
                          {master >= 0 ? in : -1, POLLIN, 0},
                          {master, POLLIN, 0},
                          {master >= 0 ? ctl : -1, POLLIN, 0}};
    /* after our input ended, look at CMD's terminal mode now and then (see send_eof) */
    if (poll(p, 5, tty && in < 0 && master >= 0 ? 50 : -1) < 0) continue;
    if (p[4].revents & (POLLIN | POLLHUP) && resize_from(ctl, master) < 0) ctl = -1;
    if (p[0].revents & POLLIN) {
      struct signalfd_siginfo si;
      if (read(sfd, &si, sizeof si) == sizeof si) {
        if ((int)si.ssi_signo == SIGWINCH && master >= 0) {
          struct winsize ws;
          if (ioctl(0, TIOCGWINSZ, &ws) == 0) ioctl(master, TIOCSWINSZ, &ws);
        } else if ((int)si.ssi_signo != SIGCHLD) {
          char k[16];
          int kl = snprintf(k, sizeof k, "K %d\n", (int)si.ssi_signo);
          (void)send(sock, k, kl, MSG_NOSIGNAL);
        }
      }
    }
    if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      char cbuf[CMSG_SPACE(sizeof(int))];
      struct iovec iov = {lines + got, sizeof lines - 1 - got};
      struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                         .msg_controllen = sizeof cbuf};
      ssize_t r = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
      if (r <= 0) {
        if (r < 0 && errno == EINTR) continue;
        /* init is gone: the container stopped, and the kernel killed CMD with it */
        if (!started) fprintf(stderr, "nsdn exec: the container stopped\n");
        code = started ? 128 + SIGKILL : 125;
        break;
      }
      for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
          memcpy(&master, CMSG_DATA(c), sizeof master);
      got += r;
      lines[got] = 0;
      char *nl;
      while ((nl = strchr(lines, '\n'))) {
        *nl = 0;
        if (lines[0] == 'E') {
          int e = atoi(lines + 2);
          fprintf(stderr, "nsdn exec: cannot run %s: %s\n", cmd[0], strerror(e));
          return e == ENOENT ? 127 : 126;
        }
        if (lines[0] == 'S') {
          started = 1;
          if (master >= 0) {
            first_size(master, cols, rows);
            if (isatty(0) && tcgetattr(0, &saved) == 0) {
              struct termios raw = saved;
              cfmakeraw(&raw);
              tcsetattr(0, TCSANOW, &raw);
              restore = 1;
            }
          }
        }
        if (lines[0] == 'X') code = atoi(lines + 2);
        got -= nl + 1 - lines;
        memmove(lines, nl + 1, got + 1);
      }
    }
    if (in >= 0 && master >= 0 && (p[2].revents & (POLLIN | POLLHUP | POLLERR)) &&
        !relay(0, master))
      in = -1; /* our input ended */
    if (master >= 0 && (p[3].revents & (POLLIN | POLLHUP | POLLERR)) && !relay(master, 1)) {
      close(master); /* CMD closed its terminal */
      master = -1;
    }
    if (tty && in < 0 && master >= 0) send_eof(master, &last_canon);
  }
  if (master >= 0) { /* what CMD wrote last */
    char buf[4096];
    ssize_t r;
    fcntl(master, F_SETFL, O_NONBLOCK);
    while ((r = read(master, buf, sizeof buf)) > 0) (void)!write(1, buf, r);
  }
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
  int sfd = signalfd(-1, &s, SFD_CLOEXEC);
  if (sfd < 0) die("signalfd", NULL);
  signal(SIGPIPE, SIG_IGN);
  int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0) die("openpt", "/dev/ptmx");
  int slave = open(ptsname(master), O_RDWR | O_NOCTTY);
  if (slave < 0) die("open", ptsname(master));
  first_size(master, cols, rows);
  const char *home = getenv("HOME");
  int e = 0;
  pid_t child = start(argv + i + 1, NULL, home ? home : "/", UINT64_MAX, NULL, slave, &e);
  close(slave);
  if (child < 0 || e) {
    fprintf(stderr, "nsdn-init pty: cannot run %s: %s\n", argv[i + 1], strerror(e ? e : errno));
    return e == ENOENT ? 127 : 126;
  }
  int in = 0, last_canon = -1;
  for (;;) {
    struct pollfd p[4] = {{sfd, POLLIN, 0}, {in, POLLIN, 0}, {master, POLLIN, 0}, {ctl, POLLIN, 0}};
    if (poll(p, 4, in < 0 ? 50 : -1) < 0) continue;
    if (p[0].revents & POLLIN) {
      struct signalfd_siginfo si;
      if (read(sfd, &si, sizeof si) == sizeof si && (int)si.ssi_signo != SIGCHLD)
        kill(child, (int)si.ssi_signo);
      int st;
      if (waitpid(child, &st, WNOHANG) == child) {
        char buf[4096];
        ssize_t r;
        fcntl(master, F_SETFL, O_NONBLOCK); /* what the shell wrote last */
        while ((r = read(master, buf, sizeof buf)) > 0) (void)!write(1, buf, r);
        return status_code(st);
      }
    }
    if (p[3].revents & (POLLIN | POLLHUP) && resize_from(ctl, master) < 0) ctl = -1;
    if (in >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR)) && !relay(0, master)) in = -1;
    if (p[2].revents & (POLLIN | POLLHUP | POLLERR)) relay(master, 1);
    if (in < 0) send_eof(master, &last_canon);
  }
}

int main(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "run")) return cmd_run();
  if (argc >= 2 && !strcmp(argv[1], "exec")) return cmd_exec(argc, argv);
  if (argc >= 2 && !strcmp(argv[1], "pty")) return cmd_pty(argc, argv);
  fprintf(stderr, "usage: nsdn-init run | exec SOCK [-t] [-s COLSxROWS] [-C FD] [-w DIR] -- "
                  "CMD... | pty NETNS COLSxROWS [-C FD] -- CMD...\n");
  return 125;
}
