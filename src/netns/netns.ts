/**
 * Named network namespaces, compatible with iproute2: a named netns is a bind mount of a
 * namespace file on /run/netns/NAME, so `ip netns list` and `ip -n NAME` see nsdn's namespaces
 * and nsdn sees theirs.
 *
 * Namespaces are per thread. Node runs JavaScript on its main thread, so every switch happens
 * there, synchronously, inside {@link runInNetnsSync}: nothing asynchronous may start inside the
 * window (it could land in the wrong namespace), and a failed switch back aborts the process.
 * @module
 */
import { spawn, spawnSync } from 'node:child_process'
import type {
  ChildProcess,
  SpawnOptions,
  SpawnSyncOptions,
  SpawnSyncReturns,
} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { ConfigError, NsdnError } from '../errors.js'
import {
  CLONE,
  MNT_DETACH,
  MS,
  SyscallError,
  mount,
  nsType,
  setns,
  umount2,
  unshare,
} from '../ffi/libc.js'
import { runOpSync } from '../op.js'
import { validNetnsName } from '../validate.js'

/** Where named namespaces live; NSDN_NETNS_DIR overrides it (iproute2 always uses /run/netns). */
export function netnsDir(): string {
  return process.env.NSDN_NETNS_DIR ?? '/run/netns'
}

/** A named namespace that exists already. */
export function netnsExists(name: string): NsdnError {
  return new NsdnError('E_EXISTS', `netns "${name}" already exists`, {
    hint: `delete it with "nsdn netns del ${name}" or pick another name`,
  })
}

/** An open network namespace. `name` is its iproute2 name; undefined for nsdn's own. */
export class NetNs {
  private closed = false
  private constructor(
    readonly name: string | undefined,
    readonly fd: number,
    /** "dev:ino" of the namespace file: equal ids mean the same namespace. */
    readonly id: string,
    /** The file it was opened from, while that is known (not for nsdn's own). */
    readonly path?: string,
  ) {}

  private static self: NetNs | undefined

  /** The namespace nsdn itself runs in (opened once, never closed). */
  static current(): NetNs {
    if (!NetNs.self)
      NetNs.self = NetNs.fromFd(undefined, fs.openSync('/proc/thread-self/ns/net', 'r'))
    return NetNs.self
  }

  /** The main thread moved for good (the sandbox): nsdn's own namespace is the new one. */
  static reset(): void {
    if (NetNs.self) fs.closeSync(NetNs.self.fd)
    NetNs.self = undefined
    NetNs.current()
  }

  private static fromFd(name: string | undefined, fd: number, file?: string): NetNs {
    const st = fs.fstatSync(fd)
    return new NetNs(name, fd, `${st.dev}:${st.ino}`, file)
  }

  /** Open the named namespace NAME. Throws E_NETNS when there is none. */
  static open(name: string): NetNs {
    validNetnsName(name)
    let fd: number
    try {
      fd = fs.openSync(path.join(netnsDir(), name), 'r')
    } catch (err) {
      throw new NsdnError('E_NETNS', `netns "${name}" does not exist`, {
        cause: err,
        hint: `create it with "nsdn netns add ${name}"; "nsdn netns list" shows the existing ones`,
      })
    }
    const ns = NetNs.fromFd(name, fd, path.join(netnsDir(), name))
    if (!isNetnsFile(fd)) {
      fs.closeSync(fd)
      throw new NsdnError('E_NETNS', `${path.join(netnsDir(), name)} is not a network namespace`)
    }
    return ns
  }

  /**
   * The named namespace NAME from an fd opened by someone else (nsdn-netns, which made it):
   * no path lookup. Throws E_NETNS when fd is not a network namespace.
   */
  static adopt(name: string, fd: number): NetNs {
    if (!isNetnsFile(fd)) throw new NsdnError('E_NETNS', `fd ${fd} is not a network namespace`)
    return NetNs.fromFd(name, fd, path.join(netnsDir(), name))
  }

  /** Open a namespace by path (/proc/PID/ns/net, /run/netns/NAME, a CNI_NETNS path). */
  static openPath(nsPath: string): NetNs {
    let fd: number
    try {
      fd = fs.openSync(nsPath, 'r')
    } catch (err) {
      throw new NsdnError('E_NETNS', `cannot open netns path "${nsPath}"`, { cause: err })
    }
    if (!isNetnsFile(fd)) {
      fs.closeSync(fd)
      throw new NsdnError('E_NETNS', `"${nsPath}" is not a network namespace`)
    }
    const name = path.dirname(nsPath) === netnsDir() ? path.basename(nsPath) : undefined
    return NetNs.fromFd(name, fd, path.resolve(nsPath))
  }

  /** Equivalent: `ip netns add NAME`. */
  static create(name: string): NetNs {
    validNetnsName(name)
    const file = path.join(netnsDir(), name)
    return runOpSync(
      { kind: 'netns.add', name },
      () => {
        ensureSharedNetnsDir()
        try {
          fs.closeSync(
            fs.openSync(
              file,
              fs.constants.O_RDONLY | fs.constants.O_CREAT | fs.constants.O_EXCL,
              0,
            ),
          )
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw netnsExists(name)
          throw err
        }
        let fd: number
        try {
          // The fd comes from inside the window: it is the namespace just made, and reopening
          // it through the mount would cost a path walk and a type check.
          fd = withThreadNs(() => {
            unshare(CLONE.NEWNET)
            const self = fs.openSync('/proc/thread-self/ns/net', 'r')
            try {
              mount('/proc/thread-self/ns/net', file, 'none', MS.BIND)
            } catch (err) {
              fs.closeSync(self)
              throw err
            }
            return self
          })
        } catch (err) {
          fs.rmSync(file, { force: true })
          throw err
        }
        return NetNs.fromFd(name, fd, file)
      },
      new NetNs(name, -1, `dry:${name}`),
    )
  }

  /** Name the network namespace of process `pid` (a container's). Equivalent: `ip netns attach`. */
  static attach(name: string, pid: number): void {
    validNetnsName(name)
    const file = path.join(netnsDir(), name)
    runOpSync(
      { kind: 'netns.attach', name, pid },
      () => {
        ensureSharedNetnsDir()
        try {
          fs.closeSync(fs.openSync(file, 'wx', 0))
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw netnsExists(name)
          throw err
        }
        try {
          mount(`/proc/${pid}/ns/net`, file, 'none', MS.BIND)
        } catch (err) {
          fs.rmSync(file, { force: true })
          throw err
        }
      },
      undefined,
    )
  }

  /** Equivalent: `ip netns del NAME`. Closes nsdn's sockets in it first (they would pin it). */
  static delete(name: string): void {
    validNetnsName(name)
    const file = path.join(netnsDir(), name)
    if (!fs.existsSync(file))
      throw new NsdnError('E_NOT_FOUND', `netns "${name}" does not exist`, {
        hint: '"nsdn netns list" shows the existing ones',
      })
    runOpSync(
      { kind: 'netns.del', name },
      () => {
        beforeNetnsDelete(name)
        try {
          umount2(file, MNT_DETACH)
        } catch (err) {
          if (!(err instanceof SyscallError && err.errno === 'EINVAL')) throw err
        }
        try {
          fs.unlinkSync(file)
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
        }
      },
      undefined,
    )
  }

  /** Equivalent: `ip netns list` (names only, sorted). */
  static list(): string[] {
    try {
      return fs.readdirSync(netnsDir()).sort()
    } catch {
      return []
    }
  }

  static exists(name: string): boolean {
    return fs.existsSync(path.join(netnsDir(), validNetnsName(name)))
  }

  close(): void {
    if (this.closed || this === NetNs.self || this.fd < 0) return
    this.closed = true
    fs.closeSync(this.fd)
  }

  toString(): string {
    return this.name ? `netns "${this.name}"` : 'the current netns'
  }
}

const deleteHooks: Array<(name: string) => void> = []

/** Run the hooks of a named namespace about to be deleted. */
export function beforeNetnsDelete(name: string): void {
  for (const hook of deleteHooks) hook(name)
}

/** Called before a named namespace is deleted (the netlink layer closes its socket there). */
export function onNetnsDelete(hook: (name: string) => void): void {
  deleteHooks.push(hook)
}

function isNetnsFile(fd: number): boolean {
  try {
    return nsType(fd) === CLONE.NEWNET
  } catch {
    return false
  }
}

let netnsDirShared = false

/**
 * Make the netns directory a shared mount point, bind-mounting it on itself first when it is
 * not a mount point, as `ip netns add` does, so namespaces mounted there propagate.
 */
export function ensureSharedNetnsDir(): void {
  if (netnsDirShared) return
  const dir = netnsDir()
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 })
  try {
    mount('none', dir, null, MS.SHARED | MS.REC)
  } catch (err) {
    if (!(err instanceof SyscallError && err.errno === 'EINVAL')) throw err
    mount(dir, dir, 'none', MS.BIND | MS.REC)
    mount('none', dir, null, MS.SHARED | MS.REC)
  }
  netnsDirShared = true
}

/** fd of the namespace the main thread is in right now (changes inside a window). */
let currentFd = -1

/**
 * Run fn on the main thread, then put the thread back in the namespace it was in. If that
 * switch back fails the process aborts: code must never keep running in the wrong namespace.
 */
function withThreadNs<T>(fn: () => T): T {
  const back = currentFd >= 0 ? currentFd : NetNs.current().fd
  try {
    const r = fn()
    if (r && typeof (r as { then?: unknown }).then === 'function')
      throw new NsdnError('E_INTERNAL', 'a netns window must be synchronous (got a promise)')
    return r
  } finally {
    try {
      setns(back, CLONE.NEWNET)
    } catch {
      process.stderr.write('nsdn: cannot switch back to the original netns; aborting\n')
      process.abort()
    }
  }
}

/** Run a synchronous function inside ns (e.g. open a socket, write a sysctl). */
export function runInNetnsSync<T>(ns: NetNs, fn: () => T): T {
  if (ns.fd < 0) throw new NsdnError('E_INTERNAL', `${ns} is not open`)
  const outer = currentFd
  return withThreadNs(() => {
    setns(ns.fd, CLONE.NEWNET)
    currentFd = ns.fd
    try {
      return fn()
    } finally {
      currentFd = outer
    }
  })
}

/** Start a command inside ns (setns, spawn, switch back): `ip netns exec NAME CMD...`. */
export function spawnInNetns(
  ns: NetNs,
  argv: readonly string[],
  opts: SpawnOptions = {},
): ChildProcess {
  const [cmd, ...args] = argv
  if (!cmd) throw new ConfigError('no command given', 'command')
  return runInNetnsSync(ns, () => spawn(cmd, args, opts))
}

/** Run a command inside ns to completion. */
export function spawnSyncInNetns(
  ns: NetNs,
  argv: readonly string[],
  opts: SpawnSyncOptions = {},
): SpawnSyncReturns<Buffer | string> {
  const [cmd, ...args] = argv
  if (!cmd) throw new ConfigError('no command given', 'command')
  return runInNetnsSync(ns, () => spawnSync(cmd, args, opts))
}

// Open the process's own namespace now, before any window can move the main thread.
NetNs.current()
