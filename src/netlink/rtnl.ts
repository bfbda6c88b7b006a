/**
 * Rtnl: one rtnetlink socket bound to one network namespace (opened inside a synchronous setns
 * window, it stays in that namespace), and the choke point every kernel operation passes.
 * The `netlink` package carries the bytes (sequence numbers, multipart replies); errors and
 * interrupted dumps, which it leaves unhandled, are decoded here.
 *
 * The rule for library users: a socket keeps its namespace alive, and with it the namespace's
 * devices (the host ends of its veths). So a handle is closed
 * - by `NetNs.delete(name)` (nsdn's `netns del`), before the namespace's file goes;
 * - when the file it was opened from goes away behind nsdn's back (`ip netns del`, a process
 *   whose /proc/PID/ns/net was used exiting): a timer checks each such file once a second;
 * - by `handle.close()` or `Rtnl.closeAll()`, which a program calls when it is done (the CLI
 *   does after every command). A namespace nsdn holds no file of (opened from an fd only) is
 *   freed only this way.
 * @module
 */
import fs from 'node:fs'
// the socket layer only: the package's index loads every family (nl80211, wireguard...)
import { NetlinkSocket, createNetlink } from 'netlink/dist/netlink'
import { type NetlinkMessage, formatMessage } from 'netlink/dist/structs'
import { KernelError, NsdnError, codeForErrno } from '../errors.js'
import { errnoName } from '../ffi/libc.js'
import { NetNs, onNetnsDelete, runInNetnsSync } from '../netns/netns.js'
import { type Op, runOp } from '../op.js'
import { formatOp } from '../teach/commands.js'
import * as K from './wire/constants.js'
import type { Request } from './wire/messages.js'

const NETLINK_ROUTE = 0

/** How often the files of namespaces with an open socket are checked. */
const SWEEP_MS = 1000

/** How often an interrupted dump is retried before giving up with E_TRY_AGAIN. */
const DUMP_RETRIES = 5

/**
 * Requests sent and not yet answered, per socket. The kernel answers a whole sendmsg before it
 * returns: the answers (an echoed link is ~2.5 KiB of receive buffer) must fit the socket's
 * buffer (208 KiB by default) until they are read.
 */
const MAX_UNANSWERED = 64

/**
 * The package's own bookkeeping of awaited answers (by sequence number; it keeps the socket
 * referenced meanwhile). Its request() sends at once, so a batch registers its answers itself.
 */
interface Refs {
  makeRef(seq: number, cb: (err: Error | null, msgs?: NetlinkMessage[]) => void): number
  dropRef(seq: number): void
}

/** A request refused by the kernel: errno only; exec() turns it into a KernelError. */
export class NetlinkErrno extends Error {
  constructor(readonly errno: string) {
    super(`netlink: ${errno}`)
  }
}

export class Rtnl {
  private static cache = new Map<string, Rtnl>()
  private dumpChain: Promise<unknown> = Promise.resolve()
  private dumping = false
  private closed = false
  /** Requests not sent yet, in call order: sent together once the current tick is done. */
  private outbox: { seq: number; iov: Uint8Array[]; reject(err: unknown): void }[] = []
  private flushQueued = false
  /** Requests sent and not answered yet. */
  private sent = 0
  /**
   * The socket's netlink port, read once: without it the package asks the kernel for it
   * (getsockname) on every message it sends.
   */
  private readonly port: number

  /**
   * The socket pins its namespace by itself, so a handle keeps no fd of the caller's NetNs:
   * callers open and close their NetNs as they please, the handle stays valid.
   */
  private constructor(
    ns: NetNs,
    private readonly sock: NetlinkSocket,
  ) {
    this.nsName = ns.name
    this.nsId = ns.id
    this.nsPath = ns.path
    this.where = String(ns)
    this.port = sock.address().port
  }

  /** The namespace's file, watched: when it goes away, so does the socket. */
  private readonly nsPath: string | undefined
  private static sweeper: NodeJS.Timeout | undefined

  /** Close the handles whose namespace file is gone or now holds another namespace. */
  static sweep(): void {
    for (const h of Rtnl.cache.values()) {
      if (h.nsPath === undefined) continue
      const st = fs.statSync(h.nsPath, { throwIfNoEntry: false })
      if (!st || `${st.dev}:${st.ino}` !== h.nsId) h.close()
    }
    if (![...Rtnl.cache.values()].some((h) => h.nsPath !== undefined)) {
      clearInterval(Rtnl.sweeper)
      Rtnl.sweeper = undefined
    }
  }

  /** iproute2 name of the namespace, for Ops (`ip -n NAME`); undefined for nsdn's own. */
  readonly nsName: string | undefined
  /** Identity of the namespace (see NetNs.id). */
  readonly nsId: string
  private readonly where: string

  /** The handle for ns, opening its socket the first time (cached per namespace). */
  static for(ns: NetNs = NetNs.current()): Rtnl {
    const hit = Rtnl.cache.get(ns.id)
    if (hit) return hit
    // nsdn's own namespace needs no switch, nor the privilege setns takes: reads work as a user.
    const open = (): NetlinkSocket => createNetlink(NETLINK_ROUTE)
    const sock = ns.id === NetNs.current().id ? open() : runInNetnsSync(ns, open)
    // An idle socket must not keep the process alive.
    sock.unref()
    const h = new Rtnl(ns, sock)
    Rtnl.cache.set(ns.id, h)
    if (h.nsPath !== undefined && !Rtnl.sweeper)
      // Unref'd: the watch never keeps the process alive.
      Rtnl.sweeper = setInterval(Rtnl.sweep, SWEEP_MS).unref()
    return h
  }

  /**
   * A handle of the caller's own, outside the cache, for a long-lived reader (the live view
   * dumps counters every second): closing a cached handle elsewhere does not close it. The
   * caller closes it, and before the namespace goes (it pins it).
   */
  static open(ns: NetNs): Rtnl {
    const open = (): NetlinkSocket => createNetlink(NETLINK_ROUTE)
    const sock = ns.id === NetNs.current().id ? open() : runInNetnsSync(ns, open)
    sock.unref()
    return new Rtnl(ns, sock)
  }

  /** The handle for a named namespace; `undefined` means nsdn's own. */
  static named(name: string | undefined): Rtnl {
    if (name === undefined) return Rtnl.for()
    const ns = NetNs.open(name)
    try {
      return Rtnl.for(ns)
    } finally {
      ns.close()
    }
  }

  /** Close the handles of the namespace called name (it is about to be deleted). */
  static closeNamed(name: string): void {
    // Deleting the current entry while iterating a Map is safe: no copy per deleted netns.
    for (const h of Rtnl.cache.values()) if (h.nsName === name) h.close()
  }

  /** Close the socket: an open socket keeps a deleted namespace (and its veths) alive. */
  close(): void {
    if (this.closed) return
    this.closed = true
    if (Rtnl.cache.get(this.nsId) === this) Rtnl.cache.delete(this.nsId)
    this.sock.close()
  }

  /** Close every cached handle (end of a CLI command, of a test). */
  static closeAll(): void {
    for (const h of Rtnl.cache.values()) h.close()
  }

  toString(): string {
    return this.where
  }

  /**
   * Send one request and wait for the kernel's ACK (or its reply, with NLM_F_ECHO-like gets).
   * Rejects with {@link NetlinkErrno}.
   */
  async request(req: Request): Promise<NetlinkMessage[]> {
    // The kernel sends a dump in parts as they are read: the ACK of a request sent meanwhile
    // lands between them, and the netlink package then cuts the dump short. So wait for it.
    while (this.dumping) await this.dumpChain
    return this.send(req)
  }

  private async send(req: Request): Promise<NetlinkMessage[]> {
    if (this.closed) throw new NsdnError('E_INTERNAL', `netlink socket of ${this.where} is closed`)
    const seq = this.sock.generateSeq()
    const iov = formatMessage({
      type: req.type,
      flags: req.flags | K.NLM_F_REQUEST | K.NLM_F_ACK,
      seq,
      port: this.port,
      data: req.body,
    })
    // The next message starts 4-aligned (NLMSG_ALIGN).
    const pad = req.body.length % 4
    if (pad) iov.push(new Uint8Array(4 - pad))
    const refs = this.sock as unknown as Refs
    const msgs = await new Promise<NetlinkMessage[]>((resolve, reject) => {
      refs.makeRef(seq, (err, answer) => {
        refs.dropRef(seq)
        this.sent--
        this.queueFlush()
        if (err) reject(err)
        else resolve(answer ?? [])
      })
      this.outbox.push({ seq, iov, reject })
      this.queueFlush()
    })
    for (const m of msgs) {
      if (m.type === K.NLMSG_ERROR) {
        const errno = m.data.readInt32LE(0)
        if (errno !== 0) throw new NetlinkErrno(errnoName(-errno))
      } else if (m.type === K.NLMSG_DONE && m.data.length >= 4 && m.data.readInt32LE(0) < 0) {
        throw new NetlinkErrno(errnoName(-m.data.readInt32LE(0)))
      }
    }
    return msgs.filter((m) => m.type !== K.NLMSG_ERROR && m.type !== K.NLMSG_DONE)
  }

  private queueFlush(): void {
    if (this.flushQueued || !this.outbox.length) return
    this.flushQueued = true
    setImmediate(() => this.flush())
  }

  /**
   * Send what the tick queued as one sendmsg (the kernel runs the messages in order and
   * answers each): one syscall and one completion instead of one per request.
   */
  private flush(): void {
    this.flushQueued = false
    if (this.closed) return
    const n = Math.min(this.outbox.length, MAX_UNANSWERED - this.sent)
    if (n <= 0) return // the answers to come flush the rest
    const batch = this.outbox.splice(0, n)
    this.sent += n
    this.sock.socket.send(
      batch.flatMap((b) => b.iov),
      {},
      (err) => {
        if (!err) return
        const refs = this.sock as unknown as Refs
        for (const b of batch) {
          refs.dropRef(b.seq)
          this.sent--
          b.reject(err)
        }
      },
    )
  }

  /**
   * A dump (NLM_F_DUMP): all messages, retried when the kernel flags it NLM_F_DUMP_INTR (the
   * table changed while it was read). Dumps on one socket run one at a time: the kernel
   * refuses a second dump while one is in progress.
   */
  dump(req: Request): Promise<NetlinkMessage[]> {
    const run = async (): Promise<NetlinkMessage[]> => {
      this.dumping = true
      try {
        for (let i = 0; ; i++) {
          const msgs = await this.send(req)
          if (!msgs.some((m) => m.flags & K.NLM_F_DUMP_INTR)) return msgs
          if (i >= DUMP_RETRIES) throw new NetlinkErrno('EINTR')
        }
      } finally {
        this.dumping = false
      }
    }
    const p = this.dumpChain.then(run, run)
    this.dumpChain = p.catch(() => undefined)
    return p
  }

  /**
   * The choke point: log, teach (--explain), skip (--dry-run), and turn a kernel refusal into
   * a KernelError that names the op, the errno and the equivalent command.
   */
  exec<T>(op: Op, fn: () => Promise<T>, dryValue: T): Promise<T> {
    return runOp(
      op,
      () => fn().catch((err: unknown) => Promise.reject(kernelError(op, err))),
      dryValue,
    )
  }
}

function kernelError(op: Op, err: unknown): unknown {
  if (!(err instanceof NetlinkErrno)) return err
  const command = formatOp(op)
  // The kernel refuses an IPv6 address on a link whose MTU is under 1280 with a bare EINVAL.
  const v6 = (op.kind === 'addr.add' || op.kind === 'addr.replace') && op.cidr.includes(':')
  const hint =
    v6 && err.errno === 'EINVAL'
      ? `IPv6 needs an MTU of 1280 or more: check the MTU of ${op.dev} ("mtu" in a config)`
      : HINTS[err.errno]
  return new KernelError(codeForErrno(err.errno), `${command}: ${err.errno}`, err.errno, command, {
    cause: err,
    ...(hint ? { hint } : {}),
  })
}

const HINTS: Record<string, string> = {
  EEXIST: 'an object with that name or address exists already; delete it or pick another',
  ENODEV: 'no such device: check the name with "nsdn link list"',
  EPERM: 'run as root (CAP_NET_ADMIN is needed)',
  EOPNOTSUPP: 'this kernel or device does not support the operation',
}

// Deleting a namespace must first close nsdn's socket in it.
onNetnsDelete((name) => Rtnl.closeNamed(name))
