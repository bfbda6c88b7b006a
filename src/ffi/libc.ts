/**
 * libc through koffi: the only module that imports koffi. Every call is synchronous (koffi's
 * async form runs on a pool thread, and namespaces are per thread), and a failing call throws a
 * {@link SyscallError} carrying the errno name.
 * @module
 */
import koffi, { type LibraryHandle } from 'koffi'
import { constants } from 'node:os'
import { KernelError, codeForErrno } from '../errors.js'

const PROTOTYPES = {
  unshare: 'int unshare(int flags)',
  setns: 'int setns(int fd, int nstype)',
  mount:
    'int mount(const char *source, const char *target, const char *fstype, ' +
    'unsigned long flags, const char *data)',
  umount2: 'int umount2(const char *target, int flags)',
  sethostname: 'int sethostname(const char *name, size_t len)',
  ioctl: 'int ioctl(int fd, unsigned long request, ...)',
  flock: 'int flock(int fd, int op)',
  mkfifo: 'int mkfifo(const char *path, unsigned int mode)',
  socketpair: 'int socketpair(int domain, int type, int protocol, int *sv)',
  close: 'int close(int fd)',
  waitpid: 'int waitpid(int pid, _Out_ int *status, int options)',
  sigfillset: 'int sigfillset(void *set)',
  sigemptyset: 'int sigemptyset(void *set)',
  faInit: 'int posix_spawn_file_actions_init(void *fa)',
  faDup2: 'int posix_spawn_file_actions_adddup2(void *fa, int fd, int newfd)',
  faDestroy: 'int posix_spawn_file_actions_destroy(void *fa)',
  attrInit: 'int posix_spawnattr_init(void *attr)',
  attrFlags: 'int posix_spawnattr_setflags(void *attr, short flags)',
  attrSigdef: 'int posix_spawnattr_setsigdefault(void *attr, void *set)',
  attrSigmask: 'int posix_spawnattr_setsigmask(void *attr, void *set)',
  attrDestroy: 'int posix_spawnattr_destroy(void *attr)',
  posixSpawn:
    'int posix_spawn(_Out_ int *pid, const char *path, void *fa, void *attr, ' +
    'const char **argv, const char **envp)',
  getsockname: 'int getsockname(int fd, void *addr, void *len)',
  setsockopt: 'int setsockopt(int fd, int level, int name, const void *value, unsigned int len)',
  socket: 'int socket(int domain, int type, int protocol)',
  bind: 'int bind(int fd, const void *addr, unsigned int len)',
  send: 'long send(int fd, const void *buf, size_t len, int flags)',
  recv: 'long recv(int fd, void *buf, size_t len, int flags)',
  poll: 'int poll(void *fds, unsigned long nfds, int timeout)',
  syscall: 'long syscall(long number, ...)',
} as const

type Name = keyof typeof PROTOTYPES
let libc: LibraryHandle | undefined
type Fn = ReturnType<LibraryHandle['func']>
const declared: Partial<Record<Name, Fn>> = {}

/** Each function declared on its first call: parsing them all at load cost every process ~2 ms. */
const c = new Proxy({} as Record<Name, Fn>, {
  get: (_t, name: Name) =>
    (declared[name] ??= (libc ??= koffi.load('libc.so.6')).func(PROTOTYPES[name])),
})

export const CLONE = {
  NEWNS: 0x00020000,
  NEWCGROUP: 0x02000000,
  NEWUTS: 0x04000000,
  NEWIPC: 0x08000000,
  NEWUSER: 0x10000000,
  NEWPID: 0x20000000,
  NEWNET: 0x40000000,
  FS: 0x00000200,
} as const

export const MS = {
  RDONLY: 1,
  NOSUID: 2,
  NODEV: 4,
  NOEXEC: 8,
  REMOUNT: 32,
  BIND: 4096,
  MOVE: 8192,
  REC: 16384,
  PRIVATE: 1 << 18,
  SLAVE: 1 << 19,
  SHARED: 1 << 20,
} as const

export const MNT_DETACH = 2

const errnoNames = new Map<number, string>(
  Object.entries(constants.errno).map(([name, num]) => [num, name]),
)

/** Name of an errno number (EEXIST), or its number as text when unknown. */
export function errnoName(num: number): string {
  return errnoNames.get(num) ?? String(num)
}

/** A libc call returned -1. */
export class SyscallError extends KernelError {
  constructor(call: string, errno: string) {
    super(codeForErrno(errno), `${call}: ${errno}`, errno, undefined)
  }
}

function check(call: string, rc: number): number {
  if (rc === -1) throw new SyscallError(call, errnoName(koffi.errno()))
  return rc
}

/** Move the calling thread into new namespaces (CLONE_* flags). */
export function unshare(flags: number): void {
  check('unshare', c.unshare(flags) as number)
}

/** Move the calling thread into the namespace open at fd. */
export function setns(fd: number, nstype = 0): void {
  check('setns', c.setns(fd, nstype) as number)
}

export function mount(
  source: string | null,
  target: string,
  fstype: string | null,
  flags: number,
  data: string | null = null,
): void {
  check(`mount ${target}`, c.mount(source, target, fstype, flags, data) as number)
}

export function umount2(target: string, flags = 0): void {
  check(`umount ${target}`, c.umount2(target, flags) as number)
}

/** The port id a netlink socket is bound to (sockaddr_nl.nl_pid). Equivalent: `getsockname(2)`. */
export function netlinkPort(fd: number): number {
  const addr = Buffer.alloc(12)
  const len = Buffer.alloc(4)
  len.writeUInt32LE(12)
  check('getsockname', c.getsockname(fd, addr, len) as number)
  return addr.readUInt32LE(4)
}

const AF_NETLINK = 16
const SOCK_RAW_CLOEXEC = 3 | 0o2000000
const MSG_DONTWAIT = 0x40
const MSG_TRUNC = 0x20
const EAGAIN = constants.errno.EAGAIN

/**
 * A netlink socket of `protocol` in the calling thread's network namespace, bound to a port the
 * kernel picks: its fd and port. Equivalent: `socket(2)`, `bind(2)`.
 */
export function netlinkOpen(protocol: number): { fd: number; port: number } {
  const fd = check('socket', c.socket(AF_NETLINK, SOCK_RAW_CLOEXEC, protocol) as number)
  try {
    const addr = Buffer.alloc(12)
    addr.writeUInt16LE(AF_NETLINK, 0)
    check('bind', c.bind(fd, addr, 12) as number)
    return { fd, port: netlinkPort(fd) }
  } catch (err) {
    c.close(fd)
    throw err
  }
}

// the same number on every architecture (syscalls added since Linux 5.1)
const SYS_PIDFD_OPEN = 434
const SYS_PIDFD_GETFD = 438

/** A file descriptor that refers to process pid. Equivalent: `pidfd_open(2)`. */
export function pidfdOpen(pid: number): number {
  return check('pidfd_open', Number(c.syscall(SYS_PIDFD_OPEN, 'int', pid, 'unsigned int', 0)))
}

/**
 * A copy of the file descriptor `target` of the process behind pidfd (ours to trace: a child).
 * Equivalent: `pidfd_getfd(2)`.
 */
export function pidfdGetfd(pidfd: number, target: number): number {
  return check(
    'pidfd_getfd',
    Number(c.syscall(SYS_PIDFD_GETFD, 'int', pidfd, 'int', target, 'unsigned int', 0)),
  )
}

/** Send one datagram. Equivalent: `send(2)`. */
export function sendDatagram(fd: number, buf: Buffer): void {
  check('send', c.send(fd, buf, buf.length, 0) as number)
}

/**
 * Receive one datagram into buf without waiting: its full length (more than buf.length when it
 * was cut), or -1 when none is queued. Equivalent: `recv(2)` with MSG_DONTWAIT | MSG_TRUNC.
 */
export function recvDatagram(fd: number, buf: Buffer): number {
  const n = c.recv(fd, buf, buf.length, MSG_DONTWAIT | MSG_TRUNC) as number
  if (n === -1 && koffi.errno() === EAGAIN) return -1
  return check('recv', n)
}

/** Wait up to ms for fd to be readable: false on timeout. Equivalent: `poll(2)`. */
export function waitReadable(fd: number, ms: number): boolean {
  const pfd = Buffer.alloc(8)
  pfd.writeInt32LE(fd, 0)
  pfd.writeInt16LE(1, 4) // POLLIN
  return check('poll', c.poll(pfd, 1, ms) as number) > 0
}

/** Close an fd. Equivalent: `close(2)`. */
export function closeFd(fd: number): void {
  c.close(fd)
}

/** Socket option levels and names (asm-generic/socket.h, linux/netlink.h). */
export const SOCKOPT = {
  SOL_SOCKET: 1,
  SO_RCVBUFFORCE: 33,
  SOL_NETLINK: 270,
  NETLINK_NO_ENOBUFS: 5,
  /** An ACK without a copy of its request. */
  NETLINK_CAP_ACK: 10,
} as const

/** Set an int socket option. Equivalent: `setsockopt(2)`. */
export function setsockoptInt(fd: number, level: number, name: number, value: number): void {
  const v = Buffer.alloc(4)
  v.writeInt32LE(value)
  check('setsockopt', c.setsockopt(fd, level, name, v, 4) as number)
}

export function mkfifo(file: string, mode: number): void {
  check(`mkfifo ${file}`, c.mkfifo(file, mode) as number)
}

export function sethostname(name: string): void {
  check('sethostname', c.sethostname(name, Buffer.byteLength(name)) as number)
}

// glibc's values
const POSIX_SPAWN = { SETSIGDEF: 0x04, SETSIGMASK: 0x08, SETSID: 0x80 } as const
const AF_UNIX = 1
const SOCK_STREAM_CLOEXEC = 1 | 0o2000000

/**
 * Start `argv` with `fds` as its fds 0, 1, 2, ... and one more: its end of a new socket pair,
 * whose other end (close-on-exec) is returned. posix_spawn is glibc's vfork-and-exec: unlike
 * Node's spawn, which forks, it copies none of Node's page tables (ms per start, under load).
 * Signals start at their defaults and unblocked; `setsid`: a session of its own. The caller
 * reaps the child ({@link waitPid}).
 */
export function spawnWithSocket(
  argv: string[],
  fds: number[],
  o: { setsid?: boolean } = {},
): { pid: number; sock: number } {
  const sv = new Int32Array(2)
  check('socketpair', c.socketpair(AF_UNIX, SOCK_STREAM_CLOEXEC, 0, sv) as number)
  // glibc's posix_spawn_file_actions_t is 80 bytes, posix_spawnattr_t 336, sigset_t 128
  const fa = Buffer.alloc(256)
  const attr = Buffer.alloc(512)
  const all = Buffer.alloc(128)
  const none = Buffer.alloc(128)
  c.faInit(fa)
  c.attrInit(attr)
  try {
    for (const [i, fd] of [...fds, sv[1]!].entries()) c.faDup2(fa, fd, i)
    c.sigfillset(all)
    c.sigemptyset(none)
    c.attrSigdef(attr, all)
    c.attrSigmask(attr, none)
    c.attrFlags(
      attr,
      POSIX_SPAWN.SETSIGDEF | POSIX_SPAWN.SETSIGMASK | (o.setsid ? POSIX_SPAWN.SETSID : 0),
    )
    const env = Object.entries(process.env).map(([k, v]) => `${k}=${v}`)
    const pid = [0]
    const rc = c.posixSpawn(pid, argv[0], fa, attr, [...argv, null], [...env, null]) as number
    if (rc !== 0) throw new SyscallError(`posix_spawn ${argv[0]}`, errnoName(rc))
    return { pid: pid[0]!, sock: sv[0]! }
  } catch (err) {
    c.close(sv[0]!)
    throw err
  } finally {
    c.close(sv[1]!)
    c.faDestroy(fa)
    c.attrDestroy(attr)
  }
}

/** Wait for child `pid` to end (reap it); its raw wait status. */
export function waitPid(pid: number): number {
  const status = [0]
  check('waitpid', c.waitpid(pid, status, 0) as number)
  return status[0]!
}

const NS_GET_NSTYPE = 0xb703

/** CLONE_NEW* type of the namespace open at fd (throws ENOTTY when fd is no namespace). */
export function nsType(fd: number): number {
  return check('ioctl NS_GET_NSTYPE', c.ioctl(fd, NS_GET_NSTYPE) as number)
}

export const LOCK = { SH: 1, EX: 2, NB: 4, UN: 8 } as const

/**
 * Lock or unlock the file open at fd. With `LOCK.NB`, returns false when another open file
 * holds a conflicting lock instead of waiting. Equivalent: `flock(2)`.
 */
export function flock(fd: number, op: number): boolean {
  if ((c.flock(fd, op) as number) === 0) return true
  const errno = koffi.errno()
  if (errno === constants.errno.EWOULDBLOCK) return false
  throw new SyscallError('flock', errnoName(errno))
}

/**
 * Blocking `flock(2)` run on a libuv pool thread, so the event loop keeps running while another
 * process holds the lock. Resolves false when the wait ended without the lock (a signal; errno
 * is not readable off the main thread): try again.
 */
export function flockAsync(fd: number, op: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    c.flock.async(fd, op, (err: unknown, rc: number) => (err ? reject(err) : resolve(rc === 0)))
  })
}
