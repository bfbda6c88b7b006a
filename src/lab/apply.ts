/**
 * Running a plan: each step's Op done through the kernel layer (which passes it through the
 * choke point: logged, explained, dry-run), independent steps in parallel (a window bounds
 * the requests in flight per run), every object journaled before it is made, and on failure
 * the journal undone. Under --explain the steps run one by one, each after its "# why", so the
 * output reads (and pastes) as a script.
 * @module
 */
import { spawn } from 'node:child_process'
import { NsdnError, ExecError, ignoreNotFound } from '../errors.js'
import { addrAdd, addrDel } from '../netlink/addr.js'
import { ethtoolFeaturesSet } from '../netlink/ethtool.js'
import {
  type Link,
  linkAddBridge,
  linkAddVeth,
  linkBriefs,
  linkDel,
  linkSet,
  tryLinkByName,
} from '../netlink/link.js'
import { qdiscAddTbf, qdiscDelRoot } from '../netlink/qdisc.js'
import { type RouteSpec, routeAdd, routeDel } from '../netlink/route.js'
import { Rtnl } from '../netlink/rtnl.js'
import { HELPER_MIN, NetnsHelper } from '../netns/helper.js'
import { NetNs, runInNetnsSync } from '../netns/netns.js'
import { type Op, opMode, runOp } from '../op.js'
import { ovsClient, ovsStart } from '../ovs/daemon.js'
import { sysctlGet, sysctlSet } from '../sysctl.js'
import { formatOp } from '../teach/commands.js'
import { runContainer } from './containers.js'
import type { Created, Step } from './plan.js'
import type { Journal } from './state.js'

/** Requests in flight at once: bounds the ACKs queued on the sockets. */
const WINDOW = 64

/**
 * Steps that build the wiring: namespaces, switches, cables and switch ports. They run before
 * any ready step inside a node, so no node comes up while ports are still being added: each
 * node that comes up sends IPv6 DAD, MLD and router solicitations that a switch floods to
 * every port it has, a cost that grows with the square of the nodes (a 1,000-host star built
 * host by host took 10-12 s, wiring first 3 s).
 */
const WIRING = new Set<Op['kind']>(['netns.add', 'link.add', 'link.add.veth', 'ovs.vsctl'])
const LO = { index: 1, name: 'lo' }

/** Handles and interface indices, looked up once per namespace and device. */
class Kernel {
  private readonly handles = new Map<string, Rtnl>()
  private readonly links = new Map<string, Promise<Pick<Link, 'index' | 'name'>>>()
  private readonly nss = new Map<string, NetNs>()
  /** Makes the namespaces on the other CPU, when a run has many (NetnsHelper). */
  helper: NetnsHelper | undefined

  /** The lab's namespaces, opened once per deploy (closed by close()). */
  netns(name: string): NetNs {
    let n = this.nss.get(name)
    if (!n) this.nss.set(name, (n = NetNs.open(name)))
    return n
  }

  /** A namespace this deploy just made: kept open for the steps in it (and its socket). */
  created(n: NetNs, rtnlFd?: number): void {
    if (!n.name) return
    this.nss.set(n.name, n)
    if (rtnlFd !== undefined) this.handles.set(n.name, Rtnl.adopt(n, rtnlFd))
  }

  close(): void {
    this.helper?.close()
    this.helper = undefined
    for (const n of this.nss.values()) n.close()
    this.nss.clear()
    for (const [ns, h] of this.handles) if (ns) h.close()
    this.handles.clear()
  }

  /** A namespace about to be deleted: nothing of nsdn's may pin it. */
  drop(name: string): void {
    this.nss.get(name)?.close()
    this.nss.delete(name)
    this.handles.get(name)?.close()
    this.handles.delete(name)
    for (const k of this.links.keys()) if (k.startsWith(`${name}|`)) this.links.delete(k)
  }

  /**
   * The socket of a namespace. A node's is the run's own (closed by close()), out of Rtnl's
   * cache: the cache checks the file of each of its namespaces every second, 40 ms a time at
   * 1,000 nodes.
   */
  h(ns: string | undefined): Rtnl {
    const k = ns ?? ''
    let h = this.handles.get(k)
    if (!h) this.handles.set(k, (h = ns ? Rtnl.open(this.netns(ns)) : Rtnl.for()))
    return h
  }

  /** A device's index (lo is 1 in every namespace). */
  ref(ns: string | undefined, name: string): Promise<Pick<Link, 'index' | 'name'>> {
    if (name === 'lo') return Promise.resolve(LO)
    const k = `${ns ?? ''}|${name}`
    let p = this.links.get(k)
    if (!p) {
      p = tryLinkByName(this.h(ns), name).then((l) => {
        if (!l) throw new NsdnError('E_NOT_FOUND', `link ${name} not found in ${ns ?? 'root'}`)
        return l
      })
      this.links.set(k, p)
    }
    return p
  }

  /** A route op's destination, gateway and device (looked up once), as routeAdd/Del take it. */
  async route(op: Extract<Op, { kind: 'route.add' | 'route.del' }>): Promise<RouteSpec> {
    return {
      dst: op.dst,
      ...(op.via ? { via: op.via } : {}),
      ...(op.dev ? { dev: await this.ref(op.ns, op.dev) } : {}),
    }
  }

  /** A device whose index is known already (the kernel echoed it): no lookup. */
  known(ns: string | undefined, name: string, index: number): void {
    this.links.set(`${ns ?? ''}|${name}`, Promise.resolve({ index, name }))
  }

  withNs<T>(ns: string | undefined, fn: (n: NetNs) => T): T {
    return fn(ns ? this.netns(ns) : NetNs.current())
  }
}

/**
 * `nft ARGV` (stdin fed) in a named namespace, or in nsdn's own.
 * Equivalent: `[ip netns exec NS] nft -f - <<EOF ... EOF`.
 */
export function nftRun(op: Extract<Op, { kind: 'nft' }>): Promise<void> {
  return runOp(
    op,
    () =>
      new Promise<void>((resolve, reject) => {
        const opts = { stdio: ['pipe', 'ignore', 'pipe'] as ('pipe' | 'ignore')[] }
        let child
        if (op.ns) {
          const n = NetNs.open(op.ns)
          try {
            child = runInNetnsSync(n, () => spawn('nft', op.argv, opts))
          } finally {
            n.close()
          }
        } else child = spawn('nft', op.argv, opts)
        let err = ''
        child.stderr!.on('data', (d: Buffer) => (err += d.toString()))
        child.on('error', (e) =>
          reject(
            new NsdnError('E_UNAVAILABLE', `cannot run nft: ${e.message}`, {
              hint: 'apt-get install nftables',
            }),
          ),
        )
        child.on('exit', (code) =>
          code === 0
            ? resolve()
            : reject(new ExecError(`nft: ${err.trim()}`, ['nft', ...op.argv], code, err)),
        )
        child.stdin!.end(op.stdin ?? '')
      }),
    undefined,
  )
}

/** Do one Op with the kernel layer (which sends it through the choke point itself). */
async function execOp(k: Kernel, op: Op): Promise<void> {
  switch (op.kind) {
    case 'netns.add': {
      if (!k.helper) return k.created(NetNs.create(op.name))
      const made = await k.helper.create(op.name)
      if (made) k.created(made.ns, made.rtnlFd)
      return
    }
    case 'link.set': {
      const s = {
        ...(op.up !== undefined ? { up: op.up } : {}),
        ...(op.mtu !== undefined ? { mtu: op.mtu } : {}),
        ...(op.addrgenmode ? { addrgenmode: op.addrgenmode } : {}),
      }
      return linkSet(k.h(op.ns), await k.ref(op.ns, op.name), s)
    }
    case 'sysctl.set':
      return k.withNs(op.ns, (n) => sysctlSet(n, op.key, op.value))
    case 'link.add':
      return linkAddBridge(k.h(op.ns), op.name, {
        ...(op.group ? { group: op.group } : {}),
        ...(op.up ? { up: true } : {}),
        ...(op.mcastSnooping === false ? { mcastSnooping: false } : {}),
      })
    case 'link.add.veth': {
      const master = op.master ? await k.ref(op.ns, op.master) : undefined
      const peerNs = op.peerNs ? k.netns(op.peerNs) : undefined
      const ix = await linkAddVeth(k.h(op.ns), op.name, op.peer, {
        ...(peerNs ? { peerNs } : {}),
        ...(master ? { master } : {}),
        ...(op.up ? { up: true } : {}),
        ...(op.queues !== undefined ? { queues: op.queues } : {}),
        ...(op.group ? { group: op.group } : {}),
      })
      if (ix) {
        k.known(op.ns, op.name, ix.index)
        k.known(op.peerNs ?? op.ns, op.peer, ix.peerIndex)
      }
      return
    }
    case 'netns.del':
      k.drop(op.name)
      if (NetNs.exists(op.name)) NetNs.delete(op.name)
      return
    case 'link.del':
      await ignoreNotFound(linkDel(k.h(op.ns), await k.ref(op.ns, op.name)))
      return
    case 'addr.del':
      return addrDel(k.h(op.ns), op.cidr, await k.ref(op.ns, op.dev))
    case 'route.del':
      return routeDel(k.h(op.ns), await k.route(op))
    case 'tc.qdisc.del':
      await qdiscDelRoot(k.h(op.ns), await k.ref(op.ns, op.dev))
      return
    case 'addr.add':
      return addrAdd(
        k.h(op.ns),
        op.cidr,
        await k.ref(op.ns, op.dev),
        op.nodad ? { nodad: true } : {},
      )
    case 'route.add':
      return routeAdd(k.h(op.ns), await k.route(op))
    case 'ethtool.features':
      return k.withNs(op.ns, (n) => ethtoolFeaturesSet(n, op.dev, op.features))
    case 'tc.qdisc.tbf':
      return qdiscAddTbf(k.h(op.ns), await k.ref(op.ns, op.dev), op)
    case 'nft':
      return nftRun(op)
    case 'ovs.vsctl': {
      // argv is the client's globals, then commands separated by "--".
      const vs = ovsClient()
      const cmds: string[][] = [[]]
      for (const a of op.argv.slice(vs.globals.length))
        if (a === '--') cmds.push([])
        else cmds[cmds.length - 1]!.push(a)
      await vs.run(cmds)
      return
    }
    case 'ovs.daemon':
      await runOp(op, () => ovsStart({ runDir: op.runDir }), undefined)
      return
    case 'container.run':
      return runContainer(op)
    default:
      throw new NsdnError('E_INTERNAL', `lab step ${op.kind} has no executor`)
  }
}

/**
 * Undo steps one by one, in order (under --explain each after its "# why"); what is already
 * gone counts as removed.
 */
export async function runRemovals(rs: readonly { op: Op; why: string }[]): Promise<void> {
  if (opMode.dryRun) {
    for (const r of rs) opMode.write(`# ${r.why}\n${formatOp(r.op)}`)
    return
  }
  const k = new Kernel()
  try {
    for (const r of rs) {
      if (opMode.explain) opMode.write(`# ${r.why}`)
      await ignoreNotFound(execOp(k, r.op)).catch((e: unknown) => {
        // nft's word for a table that is gone
        if (!(r.op.kind === 'nft' && /No such file or directory/.test(String(e)))) throw e
      })
    }
  } finally {
    k.close()
  }
}

/** The steps ready to start: the wiring's first, then the nodes' (each first in, first out). */
class Ready {
  private readonly queues: [number[], number[]] = [[], []]
  private readonly heads = [0, 0]
  constructor(private readonly steps: readonly Step[]) {}

  push(id: number): void {
    this.queues[WIRING.has(this.steps[id]!.op.kind) ? 0 : 1].push(id)
  }

  get size(): number {
    return this.queues[0].length - this.heads[0]! + this.queues[1].length - this.heads[1]!
  }

  /** The next step (the queue must not be empty). */
  take(): number {
    const q = this.heads[0]! < this.queues[0].length ? 0 : 1
    return this.queues[q][this.heads[q]!++]!
  }

  /** The step of the lowest id, taken out; undefined when none is ready. */
  lowest(): number | undefined {
    const all = this.queues.flatMap((q, i) => q.slice(this.heads[i])).sort((a, b) => a - b)
    this.queues[0] = all.slice(1)
    this.queues[1] = []
    this.heads[0] = this.heads[1] = 0
    return all[0]
  }
}

export interface RunOpts {
  journal: Journal
  /** Called after each step. */
  progress?: (done: number, total: number) => void
}

/**
 * Run the steps, dependencies first, up to WINDOW at once (one at a time under --explain).
 * Throws the first failure once the steps in flight have settled.
 */
export async function runSteps(steps: readonly Step[], o: RunOpts): Promise<void> {
  if (opMode.dryRun) {
    // Nothing is made, so nothing could be looked up: print the plan as it would run.
    for (const s of steps) opMode.write(`# ${s.why}\n${formatOp(s.op)}`)
    return
  }
  const k = new Kernel()
  const sequential = opMode.explain
  const waiting = steps.map((s) => s.deps.length)
  const next: number[][] = steps.map(() => [])
  for (const s of steps) for (const d of s.deps) next[d]!.push(s.id)
  const ready = new Ready(steps)
  // Many namespaces: all of them go to the helper at once, outside the window (they queue no
  // answers on a socket), journaled in one write.
  const nsFirst = sequential
    ? []
    : steps.filter((s) => s.op.kind === 'netns.add' && s.deps.length === 0)
  if (nsFirst.length >= HELPER_MIN) k.helper = NetnsHelper.start()
  for (const s of steps)
    if (s.deps.length === 0 && !(k.helper && s.op.kind === 'netns.add')) ready.push(s.id)
  let done = 0
  let failure: unknown
  // Steps in flight that hold a place in the window, and namespaces the helper is making.
  let inflight = 0
  let beside = 0
  // One waiter woken by whichever step settles: a Promise.race over the steps in flight
  // would attach a reaction to each of them per settled step (64 x 1251 at 250 hosts).
  let wake: (() => void) | undefined
  const start = (s: Step, byHelper = false): void => {
    const c = s.creates
    // A host sysctl is journaled with the value it had, for destroy to restore.
    if (c && !byHelper)
      o.journal.record(['sysctl' in c ? { ...c, was: sysctlGet(NetNs.current(), c.sysctl) } : c])
    if (sequential) opMode.write(`# ${s.why}`)
    if (byHelper) beside++
    else inflight++
    const settled = (): void => {
      if (byHelper) beside--
      else inflight--
      wake?.()
    }
    execOp(k, s.op).then(
      () => {
        done++
        o.progress?.(done, steps.length)
        for (const n of next[s.id]!) if (--waiting[n]! === 0) ready.push(n)
        settled()
      },
      (e: unknown) => {
        failure ??= e
        settled()
      },
    )
  }
  const idle = (): Promise<void> => new Promise<void>((r) => (wake = r))
  try {
    if (k.helper) {
      o.journal.record(nsFirst.flatMap((s) => (s.creates ? [s.creates] : [])))
      for (const s of nsFirst) start(s, true)
    }
    while (failure === undefined && done < steps.length) {
      if (sequential) {
        // Lowest id first: the order explain prints.
        const id = ready.lowest()
        if (id === undefined) break
        start(steps[id]!)
        while (inflight) await idle()
        continue
      }
      while (ready.size && inflight < WINDOW) start(steps[ready.take()]!)
      if (!inflight && !beside) break
      await idle()
    }
    while (inflight || beside) await idle()
  } finally {
    // The namespaces' bind mounts keep them: the run's fds, sockets and helper go.
    k.close()
  }
  if (failure !== undefined) throw failure
  if (done < steps.length) throw new NsdnError('E_INTERNAL', 'lab plan has a dependency cycle')
}

/**
 * The lab is ready when its ports forward: every device it made in the root namespace (switch
 * ports, root ends) has carrier. Bridges run without STP, so a port with carrier forwards.
 */
export async function waitReady(created: readonly Created[], ms = 10_000): Promise<void> {
  if (opMode.dryRun) return
  const want = new Set(
    created.flatMap((c) => ('link' in c && c.peerNs !== undefined ? [c.link] : [])),
  )
  if (!want.size) return
  const root = Rtnl.for()
  const end = Date.now() + ms
  for (;;) {
    const links = await linkBriefs(root)
    const missing = links.filter((l) => want.has(l.name) && !l.lowerUp).map((l) => l.name)
    if (!missing.length) return
    if (Date.now() > end)
      throw new NsdnError(
        'E_TRY_AGAIN',
        `ports without carrier after ${ms / 1000} s: ${missing.slice(0, 5).join(', ')}`,
      )
    await new Promise((r) => setTimeout(r, 5))
  }
}
