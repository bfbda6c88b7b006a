/**
 * Named network namespaces made beside nsdn by a small helper process (dist/nsdn-netns, which
 * setup builds from helper.c). Making one is ~0.7 ms of the kernel's work, most of it outside
 * the RTNL lock that link requests take (sysctl tables, proc entries). A lab of hundreds of
 * hosts would spend that on nsdn's own thread; with the helper on the other CPU, nsdn wires the
 * namespaces made so far meanwhile. `NetNs.create` is the one-at-a-time form; the op is the
 * same (`ip netns add NAME`).
 * @module
 */
import fs from 'node:fs'
import { Socket } from 'node:net'
import path from 'node:path'
import { NsdnError } from '../errors.js'
import { errnoName, spawnWithSocket, waitPid } from '../ffi/libc.js'
import { runOp } from '../op.js'
import { validNetnsName } from '../validate.js'
import { ensureSharedNetnsDir, netnsDir, netnsExists } from './netns.js'

/** The helper, built by scripts/setup.sh. */
const HELPER = path.resolve(__dirname, '../../nsdn-netns')

/** Namespaces a run has before the helper is worth its start (a process, ~1 ms). */
export const HELPER_MIN = 8

export class NetnsHelper {
  /** By name. */
  private readonly waiting = new Map<string, { resolve(): void; reject(e: unknown): void }>()
  private input = ''
  private ended = false

  private constructor(
    private readonly pid: number,
    private readonly sock: Socket,
  ) {
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

  /** Equivalent: `ip netns add NAME`. Resolves once the namespace is mounted. */
  create(name: string): Promise<void> {
    validNetnsName(name)
    return runOp({ kind: 'netns.add', name }, () => this.ask(name), undefined)
  }

  private ask(line: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.ended) return reject(new NsdnError('E_INTERNAL', 'nsdn-netns has ended'))
      this.waiting.set(line, { resolve, reject })
      this.sock.write(`${line}\n`)
    })
  }

  /** "NAME ERRNO" lines. */
  private answers(d: string): void {
    this.input += d
    let nl
    while ((nl = this.input.indexOf('\n')) >= 0) {
      const line = this.input.slice(0, nl)
      this.input = this.input.slice(nl + 1)
      const sp = line.lastIndexOf(' ')
      const name = line.slice(0, sp)
      const errno = errnoName(Number(line.slice(sp + 1)))
      const w = this.waiting.get(name)
      if (!w) continue
      this.waiting.delete(name)
      if (errno === '0') w.resolve()
      else if (errno === 'EEXIST') w.reject(netnsExists(name))
      else
        w.reject(
          new NsdnError('E_KERNEL', `netns add ${name}: ${errno}`, {
            hint: 'making a network namespace needs root (CAP_SYS_ADMIN)',
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
    waitPid(this.pid)
  }
}
