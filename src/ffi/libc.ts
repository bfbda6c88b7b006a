/**
 * libc through koffi: the only module that imports koffi. Every call is synchronous (koffi's
 * async form runs on a pool thread, and namespaces are per thread), and a failing call throws a
 * {@link SyscallError} carrying the errno name.
 * @module
 */
import koffi from 'koffi'
import { constants } from 'node:os'
import { KernelError, codeForErrno } from '../errors.js'

const libc = koffi.load('libc.so.6')

const c = {
  unshare: libc.func('int unshare(int flags)'),
  setns: libc.func('int setns(int fd, int nstype)'),
  mount: libc.func(
    'int mount(const char *source, const char *target, const char *fstype, ' +
      'unsigned long flags, const char *data)',
  ),
  umount2: libc.func('int umount2(const char *target, int flags)'),
  sethostname: libc.func('int sethostname(const char *name, size_t len)'),
  ioctl: libc.func('int ioctl(int fd, unsigned long request, ...)'),
  flock: libc.func('int flock(int fd, int op)'),
  mkfifo: libc.func('int mkfifo(const char *path, unsigned int mode)'),
  setsockopt: libc.func(
    'int setsockopt(int fd, int level, int name, const void *value, unsigned int len)',
  ),
}

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
