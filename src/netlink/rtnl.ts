/**
 * Rtnl: one rtnetlink socket bound to one network namespace (opened inside a synchronous setns
 * window, it stays in that namespace), and the choke point every kernel operation passes.
 * The kernel runs an rtnetlink request inside the sendmsg that carries it and queues its answer
 * before sendmsg returns (a dump's next part is made as the last one is read). So the socket
 * is plain synchronous I/O: the requests of a tick go out as one datagram, and their answers
 * are read at once, each matched to its request by sequence number. No event-loop handle, no
 * callback per datagram: at hundreds of requests per lab, those cost more than the kernel's
 * work.
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
import type { NetlinkMessage } from 'netlink/dist/structs'
import { KernelError, NsdnError, codeForErrno } from '../errors.js'
import {
  SOCKOPT,
  closeFd,
  errnoName,
  netlinkOpen,
  netlinkPort,
  recvDatagram,
  sendDatagram,
  setsockoptInt,
  waitReadable,
} from '../ffi/libc.js'
import { NetNs, onNetnsDelete, runInNetnsSync } from '../netns/netns.js'
import { type Op, runOp } from '../op.js'
import { formatOp } from '../teach/commands.js'
import * as K from './wire/constants.js'
import type { Request } from './wire/messages.js'

const NETLINK_ROUTE = 0
/** sizeof(struct nlmsghdr) */
const HDR = 16

/** How often the files of namespaces with an open socket are checked. */
const SWEEP_MS = 1000

/** How often an interrupted dump is retried before giving up with E_TRY_AGAIN. */
const DUMP_RETRIES = 5

/**
 * Requests per datagram. The kernel answers a whole datagram before sendmsg returns: the
 * answers (an echoed link is ~2.5 KiB) must fit the socket's receive buffer until read.
 */
const MAX_BATCH = 64

/** How long to wait for an answer the kernel has not queued yet (a dump's next part). */
const ANSWER_MS = 30_000

/** The receive buffer: a batch's answers wait there until read. */
const RCVBUF = 1 << 20

/** One datagram received: 64 KiB holds any part of a dump (the kernel makes them up to 32 KiB). */
const RX = Buffer.alloc(64 * 1024)

interface Waiting {
  seq: number
  /** The request's header and body, 4-aligned. */
  bytes: Buffer
  msgs: NetlinkMessage[]
  resolve(msgs: NetlinkMessage[]): void
  reject(err: unknown): void
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
  private closed = false
  /** Requests not sent yet, in call order: sent together once the current tick is done. */
  private outbox: Waiting[] = []
  /** Requests sent and not answered yet, by sequence number. */
  private readonly waiting = new Map<number, Waiting>()
  private flushQueued = false
  private seq = 0

  /**
   * The socket pins its namespace by itself, so a handle keeps no fd of the caller's NetNs:
   * callers open and close their NetNs as they please, the handle stays valid.
   */
  private constructor(
    ns: NetNs,
    private readonly fd: number,
    private readonly port: number,
  ) {
    this.nsName = ns.name
    this.nsId = ns.id
    this.nsPath = ns.path
    this.where = String(ns)
  }

  /** A socket in ns (nsdn's own needs no switch, nor the privilege setns takes). */
  private static socket(ns: NetNs): Rtnl {
    const open = (): number => netlinkOpen(NETLINK_ROUTE).fd
    return Rtnl.adopt(ns, ns.id === NetNs.current().id ? open() : runInNetnsSync(ns, open))
  }

  /**
   * The handle of a bound NETLINK_ROUTE socket made in ns by someone else (nsdn-netns makes
   * one in each namespace it makes). The caller's own, as from {@link open}.
   */
  static adopt(ns: NetNs, fd: number): Rtnl {
    setsockoptInt(fd, SOCKOPT.SOL_NETLINK, SOCKOPT.NETLINK_CAP_ACK, 1)
    try {
      setsockoptInt(fd, SOCKOPT.SOL_SOCKET, SOCKOPT.SO_RCVBUFFORCE, RCVBUF)
    } catch {
      // not root: the default buffer holds a batch of ACKs
    }
    return new Rtnl(ns, fd, netlinkPort(fd))
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
    const h = Rtnl.socket(ns)
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
    return Rtnl.socket(ns)
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
    closeFd(this.fd)
    if (this.outbox.length) {
      const gone = new NsdnError('E_INTERNAL', `netlink socket of ${this.where} is closed`)
      for (const w of this.outbox.splice(0)) w.reject(gone)
    }
  }

  /** Close every cached handle (end of a CLI command, of a test). */
  static closeAll(): void {
    for (const h of Rtnl.cache.values()) h.close()
  }

  toString(): string {
    return this.where
  }

  /**
   * Send one request and wait for the kernel's ACK: the messages it answered with before (a
   * get's reply, an NLM_F_ECHO). Rejects with {@link NetlinkErrno}.
   */
  request(req: Request): Promise<NetlinkMessage[]> {
    if (this.closed)
      return Promise.reject(
        new NsdnError('E_INTERNAL', `netlink socket of ${this.where} is closed`),
      )
    const seq = (this.seq = (this.seq + 1) >>> 0 || 1)
    // The next message starts 4-aligned (NLMSG_ALIGN).
    const len = HDR + req.body.length
    const bytes = Buffer.alloc((len + 3) & ~3)
    bytes.writeUInt32LE(len, 0)
    bytes.writeUInt16LE(req.type, 4)
    bytes.writeUInt16LE(req.flags | K.NLM_F_REQUEST | K.NLM_F_ACK, 6)
    bytes.writeUInt32LE(seq, 8)
    bytes.writeUInt32LE(this.port, 12)
    req.body.copy(bytes, HDR)
    return new Promise<NetlinkMessage[]>((resolve, reject) => {
      this.outbox.push({ seq, bytes, msgs: [], resolve, reject })
      if (!this.flushQueued) {
        this.flushQueued = true
        setImmediate(() => this.flush())
      }
    })
  }

  /**
   * Send what the tick queued, as few datagrams as the receive buffer allows (the kernel runs
   * a datagram's messages in order and answers each), and read every answer.
   */
  private flush(): void {
    this.flushQueued = false
    while (!this.closed && this.outbox.length) {
      const batch = this.outbox.splice(0, MAX_BATCH)
      try {
        for (const w of batch) this.waiting.set(w.seq, w)
        sendDatagram(this.fd, Buffer.concat(batch.map((w) => w.bytes)))
        this.receive()
      } catch (err) {
        for (const w of this.waiting.values()) w.reject(err)
        this.waiting.clear()
      }
    }
  }

  /** Read answers until every request sent has its ACK, error or end of dump. */
  private receive(): void {
    while (this.waiting.size) {
      const n = recvDatagram(this.fd, RX)
      if (n < 0) {
        if (!waitReadable(this.fd, ANSWER_MS))
          throw new NsdnError('E_TRY_AGAIN', `no answer from the kernel in ${ANSWER_MS / 1000} s`)
        continue
      }
      if (n > RX.length)
        throw new NsdnError('E_INTERNAL', `netlink answer of ${n} bytes cut to ${RX.length}`)
      // Answers that carry data keep it: a copy (RX is read again); bare ACKs need none.
      let data: Buffer | undefined
      for (let off = 0; off + HDR <= n; ) {
        const len = RX.readUInt32LE(off)
        if (len < HDR || off + len > n) break
        const type = RX.readUInt16LE(off + 4)
        const w = this.waiting.get(RX.readUInt32LE(off + 8))
        if (w && (type === K.NLMSG_ERROR || type === K.NLMSG_DONE)) {
          this.waiting.delete(w.seq)
          const errno = len >= HDR + 4 ? RX.readInt32LE(off + HDR) : 0
          if (errno < 0) w.reject(new NetlinkErrno(errnoName(-errno)))
          else w.resolve(w.msgs)
        } else if (w) {
          data ??= Buffer.from(RX.subarray(0, n))
          w.msgs.push({
            type,
            flags: RX.readUInt16LE(off + 6),
            seq: w.seq,
            port: RX.readUInt32LE(off + 12),
            data: data.subarray(off + HDR, off + len),
          })
        }
        off += (len + 3) & ~3
      }
    }
  }

  /**
   * A dump (NLM_F_DUMP): all messages, retried when the kernel flags it NLM_F_DUMP_INTR (the
   * table changed while it was read). Dumps on one socket run one at a time: the kernel
   * refuses a second dump while one is in progress.
   */
  dump(req: Request): Promise<NetlinkMessage[]> {
    const run = async (): Promise<NetlinkMessage[]> => {
      for (let i = 0; ; i++) {
        const msgs = await this.request(req)
        if (!msgs.some((m) => m.flags & K.NLM_F_DUMP_INTR)) return msgs
        if (i >= DUMP_RETRIES) throw new NetlinkErrno('EINTR')
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
