/**
 * Named network namespaces made and deleted beside nsdn by a small helper process
 * (dist/nsdn-netns, which setup builds from helper.c). Making one is ~0.7 ms of the kernel's
 * work, most of it outside the RTNL lock that link requests take (sysctl tables, proc
 * entries); unmounting one waits for an RCU grace period. A lab of hundreds of hosts would
 * spend that on nsdn's own thread; with the helper on the other CPU, nsdn wires the namespaces
 * made so far meanwhile, or removes the lab's devices while its namespaces are unmounted.
 * `NetNs.create` and `NetNs.delete` are the one-at-a-time forms; the ops are the same
 * (`ip netns add|del NAME`).
 * @module
 */
import fs from 'node:fs'
import { Socket } from 'node:net'
import path from 'node:path'
import { NsdnError } from '../errors.js'
import { closeFd, errnoName, pidfdGetfd, pidfdOpen, spawnWithSocket, waitPid } from '../ffi/libc.js'
import { runOp } from '../op.js'
import { validNetnsName } from '../validate.js'
import { NetNs, beforeNetnsDelete, ensureSharedNetnsDir, netnsDir, netnsExists } from './netns.js'

/** The helper, built by scripts/setup.sh. */
const HELPER = path.resolve(__dirname, '../../nsdn-netns')

/** Namespaces a run has before the helper is worth its start (a process, ~1 ms). */
export const HELPER_MIN = 8

/** A namespace the helper made, open, with a netlink socket it made in it. */
export interface Made {
  ns: NetNs
  /** A bound NETLINK_ROUTE socket in ns (Rtnl.adopt). */
  rtnlFd: number
}

interface Waiter {
  /** The fds the helper opened, when the answer has them. */
  resolve(fds?: [number, number]): void
  reject(e: unknown): void
}

export class NetnsHelper {
  /** By request line ("NAME" makes, "-NAME" deletes). */
  private readonly waiting = new Map<string, Waiter>()
  private input = ''
  private outbox: string[] = []
  private ended = false
  /** To copy the helper's fds (pidfd_getfd); -1 when that cannot be done. */
  private readonly pidfd: number

  private constructor(
    private readonly pid: number,
    private readonly sock: Socket,
  ) {
    try {
      this.pidfd = pidfdOpen(pid)
    } catch {
      this.pidfd = -1
    }
    sock.setEncoding('utf8')
    sock.on('data', (d: string) => this.answers(d))
    sock.on('close', () => this.end(new NsdnError('E_INTERNAL', 'nsdn-netns ended early')))
    sock.on('error', () => undefined) // 'close' follows
  }

  /**
   * A helper, or undefined when it is not built or cannot start (the caller does the work
   * itself: the helper only makes it faster).
   */
  static start(): NetnsHelper | undefined {
    if (!fs.existsSync(HELPER)) return undefined
    ensureSharedNetnsDir()
    let spawned
    try {
      spawned = spawnWithSocket([HELPER, netnsDir()], [0, 1, 2])
    } catch {
      return undefined
    }
    const sock = new Socket({ fd: spawned.sock, readable: true, writable: true })
    return new NetnsHelper(spawned.pid, sock)
  }

  /**
   * Equivalent: `ip netns add NAME`. Resolves once the namespace is mounted: with it open and
   * a netlink socket in it, copied from the helper (no path lookup, which the helper's mounts
   * slow down, and no switch of namespace here), or with nothing when they could not be copied.
   */
  create(name: string): Promise<Made | undefined> {
    validNetnsName(name)
    return runOp(
      { kind: 'netns.add', name },
      async () => {
        const fds = await this.ask(name)
        return fds && this.take(name, fds)
      },
      undefined,
    )
  }

  private take(name: string, [nsFd, sockFd]: [number, number]): Made | undefined {
    if (this.pidfd < 0) return undefined
    let ns: NetNs | undefined
    try {
      ns = NetNs.adopt(name, pidfdGetfd(this.pidfd, nsFd))
      return { ns, rtnlFd: pidfdGetfd(this.pidfd, sockFd) }
    } catch {
      ns?.close()
      return undefined
    }
  }

  /**
   * Equivalent: `ip netns del NAME` (nsdn's sockets in it closed first). Resolves once the
   * file is gone. The helper keeps the namespace open: the kernel tears it down after
   * {@link close}, not meanwhile, in the RTNL lock the caller's requests need.
   */
  delete(name: string): Promise<void> {
    validNetnsName(name)
    return runOp(
      { kind: 'netns.del', name },
      async () => {
        beforeNetnsDelete(name)
        await this.ask(`-${name}`)
      },
      undefined,
    )
  }

  private ask(line: string): Promise<[number, number] | undefined> {
    return new Promise((resolve, reject) => {
      if (this.ended) return reject(new NsdnError('E_INTERNAL', 'nsdn-netns has ended'))
      this.waiting.set(line, { resolve, reject })
      // A lab asks for all its namespaces at once: one write, not one a namespace.
      if (!this.outbox.length) queueMicrotask(() => this.flush())
      this.outbox.push(`${line}\n`)
    })
  }

  private flush(): void {
    if (!this.ended) this.sock.write(this.outbox.join(''))
    this.outbox = []
  }

  /** "REQUEST ERRNO [NSFD SOCKFD]" lines. */
  private answers(d: string): void {
    this.input += d
    let nl
    while ((nl = this.input.indexOf('\n')) >= 0) {
      const line = this.input.slice(0, nl)
      this.input = this.input.slice(nl + 1)
      const [req = '', code, nsFd, sockFd] = line.split(' ')
      const errno = errnoName(Number(code))
      const w = this.waiting.get(req)
      if (!w) continue
      this.waiting.delete(req)
      const name = req.replace(/^-/, '')
      if (errno === '0') w.resolve(sockFd ? [Number(nsFd), Number(sockFd)] : undefined)
      else if (errno === 'EEXIST') w.reject(netnsExists(name))
      else
        w.reject(
          new NsdnError('E_KERNEL', `netns ${req === name ? 'add' : 'del'} ${name}: ${errno}`, {
            hint: 'making or deleting a network namespace needs root (CAP_SYS_ADMIN)',
          }),
        )
    }
  }

  private end(err: unknown): void {
    if (this.ended) return
    this.ended = true
    for (const w of this.waiting.values()) w.reject(err)
    this.waiting.clear()
  }

  /** No more requests: the helper ends (call it once every request has its answer). */
  close(): void {
    if (this.ended) return
    this.end(new NsdnError('E_INTERNAL', 'nsdn-netns was closed'))
    this.sock.destroy()
    if (this.pidfd >= 0) closeFd(this.pidfd)
    waitPid(this.pid)
  }
}
