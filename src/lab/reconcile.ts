/**
 * Reconcile: what changes a deployed lab into its edited file, object by object. The plans of
 * the recorded text and of the new one are compared per object (a node, a switch, a link: the
 * steps' `owner`), each step by the command it stands for. An object that is gone is removed,
 * a new one created; one that changed is patched where the kernel allows it (addresses, routes,
 * a rate limit, an MTU, a NAT table, forwarding), and replaced where it does not (a node's
 * namespace, a switch, a link's ends, VLANs). Unchanged objects are not touched.
 * @module
 */
import type { Op } from '../op.js'
import { formatOp } from '../teach/commands.js'
import type { Created, Step } from './plan.js'

/** An undo, run before the new steps: `op` is the command it stands for. */
export interface Removal {
  op: Op
  why: string
}

export interface Reconciliation {
  /** In order: routes and tables, links, their old addresses and limits, switches, nodes. */
  remove: Removal[]
  /** The new plan's steps that must run (ids and deps renumbered). */
  steps: Step[]
  /** Owners removed, replaced, created or patched: what a learner is told changed. */
  changed: string[]
}

const sig = (s: Step): string => formatOp(s.op)

function byOwner(steps: readonly Step[]): Map<string, Step[]> {
  const m = new Map<string, Step[]>()
  for (const s of steps) m.set(s.owner, [...(m.get(s.owner) ?? []), s])
  return m
}

/** Steps that make a link what it is: any change to them means a new link. */
const structural = (s: Step): boolean =>
  !(s.op.kind === 'addr.add' || s.op.kind === 'tc.qdisc.tbf' || isMtu(s.op))
const isMtu = (op: Op): boolean => op.kind === 'link.set' && op.mtu !== undefined

/** The lab nodes a link joins, from its key ("a:dev|b:dev"). */
const linkNodes = (owner: string): string[] =>
  owner
    .slice('link:'.length)
    .split('|')
    .map((e) => `node:${e.slice(0, e.lastIndexOf(':'))}`)

/**
 * The removals and steps that turn the lab `before` planned into the lab `after` plans.
 * `journal` is the deployed lab's record (a host sysctl's value before the lab).
 */
export function reconcile(
  before: readonly Step[],
  after: readonly Step[],
  journal: readonly Created[] = [],
): Reconciliation {
  const old = byOwner(before)
  const neu = byOwner(after)
  const sigs = (ss: readonly Step[] | undefined): Set<string> => new Set((ss ?? []).map(sig))
  const same = (a: readonly Step[], b: readonly Step[]): boolean =>
    a.length === b.length && a.every((s, i) => sig(s) === sig(b[i]!))
  const replaced = new Set<string>()
  const changed = new Set<string>()

  // Namespaces and switches first: the links into them follow them.
  for (const [owner, ss] of old) {
    const now = neu.get(owner)
    if (!now) continue
    if (owner.startsWith('node:')) {
      const base = (x: readonly Step[]): string[] =>
        x.filter((s) => s.op.kind === 'netns.add').map(sig)
      if (base(ss).join() !== base(now).join()) replaced.add(owner)
    } else if (owner.startsWith('switch:') && !same(ss, now)) replaced.add(owner)
  }
  const afterById = new Map(after.map((s) => [s.id, s]))
  for (const [owner, ss] of old) {
    const now = neu.get(owner)
    if (!now || !owner.startsWith('link:')) continue
    const veth = now.find((s) => s.op.kind === 'link.add.veth')
    const into = (veth?.deps ?? []).map((d) => afterById.get(d)!.owner)
    if (into.some((o) => replaced.has(o)) || !same(ss.filter(structural), now.filter(structural)))
      replaced.add(owner)
  }

  const remove: { rank: number; r: Removal }[] = []
  const drop = (rank: number, op: Op, why: string): void =>
    void remove.push({ rank, r: { op, why } })
  const affected = new Set<string>()

  for (const [owner, ss] of old) {
    const gone = !neu.has(owner)
    if (!gone && !replaced.has(owner)) continue
    changed.add(owner)
    if (owner.startsWith('link:')) {
      for (const n of linkNodes(owner)) affected.add(n)
      for (const s of ss) {
        const op = s.op
        if (op.kind === 'ovs.vsctl' && op.argv.includes('add-port')) {
          const i = op.argv.indexOf('add-port')
          const globals = op.argv.slice(0, i)
          drop(
            1,
            { kind: 'ovs.vsctl', argv: [...globals, '--if-exists', 'del-port', op.argv[i + 2]!] },
            'a port the lab no longer has, or has changed',
          )
        }
        if (op.kind === 'link.add.veth')
          drop(
            2,
            { kind: 'link.del', ...(op.ns ? { ns: op.ns } : {}), name: op.name },
            `a link the lab no longer has, or has changed: ${op.name} (its peer goes with it)`,
          )
      }
    } else if (owner.startsWith('switch:')) {
      for (const s of ss) {
        const op = s.op
        if (op.kind === 'link.add')
          drop(
            4,
            { kind: 'link.del', name: op.name },
            `a switch the lab no longer has, or has changed`,
          )
        if (op.kind === 'ovs.vsctl' && op.argv.includes('add-br')) {
          const i = op.argv.indexOf('add-br')
          drop(
            4,
            {
              kind: 'ovs.vsctl',
              argv: [...op.argv.slice(0, i), '--if-exists', 'del-br', op.argv[i + 1]!],
            },
            'a switch the lab no longer has, or has changed',
          )
        }
      }
    } else if (owner.startsWith('node:')) {
      const ns = ss.find((s) => s.op.kind === 'netns.add')?.op
      if (ns?.kind === 'netns.add')
        drop(
          5,
          { kind: 'netns.del', name: ns.name },
          'a node the lab no longer has, or has changed: its namespace, with everything in it',
        )
    }
  }

  // What changed inside a kept link: addresses, rate limit, MTU.
  for (const [owner, ss] of old) {
    const now = neu.get(owner)
    if (!now || replaced.has(owner) || !owner.startsWith('link:')) continue
    const have = sigs(now)
    for (const s of ss) {
      if (have.has(sig(s))) continue
      changed.add(owner)
      const op = s.op
      if (op.kind === 'addr.add') {
        for (const n of linkNodes(owner)) affected.add(n)
        const where = { ...(op.ns ? { ns: op.ns } : {}), cidr: op.cidr, dev: op.dev }
        drop(3, { kind: 'addr.del', ...where }, 'an address the lab no longer has')
      } else if (op.kind === 'tc.qdisc.tbf')
        drop(
          3,
          { kind: 'tc.qdisc.del', ...(op.ns ? { ns: op.ns } : {}), dev: op.dev },
          'a rate limit the lab changed or lifted',
        )
      else if (
        op.kind === 'link.set' &&
        op.mtu !== undefined &&
        !now.some(
          (x) =>
            x.op.kind === 'link.set' &&
            x.op.mtu !== undefined &&
            x.op.name === op.name &&
            x.op.ns === op.ns,
        )
      )
        drop(
          3,
          { kind: 'link.set', ...(op.ns ? { ns: op.ns } : {}), name: op.name, mtu: 1500 },
          'the MTU back to the default',
        )
    }
    if (now.some((s) => !sigs(ss).has(sig(s)))) changed.add(owner)
  }

  // What changed inside a kept node: routes, NAT, forwarding.
  for (const [owner, ss] of old) {
    if (!owner.startsWith('node:') || replaced.has(owner)) continue
    const now = neu.get(owner) ?? []
    if (!neu.has(owner) && ss.some((s) => s.op.kind === 'netns.add')) continue
    const have = sigs(now)
    for (const s of ss) {
      const op = s.op
      const keep = have.has(sig(s)) && !(op.kind === 'route.add' && affected.has(owner))
      if (keep) continue
      if (op.kind === 'route.add') {
        drop(
          0,
          { ...op, kind: 'route.del' },
          'a route the lab no longer has (or one through a changed link, added again below)',
        )
      } else if (op.kind === 'nft') {
        const table = /^table ip (\S+) /.exec(op.stdin ?? '')?.[1]
        if (table)
          drop(
            0,
            {
              kind: 'nft',
              ...(op.ns ? { ns: op.ns } : {}),
              argv: ['delete', 'table', 'ip', table],
            },
            'a NAT table the lab changed or no longer has',
          )
      } else if (op.kind === 'sysctl.set') {
        const was = op.ns
          ? '0'
          : journal.flatMap((c) =>
              'sysctl' in c && c.sysctl === op.key && c.was !== undefined ? [c.was] : [],
            )[0]
        if (was !== undefined)
          drop(0, { ...op, value: was }, `${op.key} back to ${was}: the lab no longer needs it`)
      } else continue
      changed.add(owner)
    }
  }

  // The new plan's steps that run: new and replaced objects whole, the rest where it changed.
  const keep = after.filter((s) => {
    const before_ = old.get(s.owner)
    if (!before_ || replaced.has(s.owner)) return true
    if (s.op.kind === 'route.add' && affected.has(s.owner)) return true
    return !sigs(before_).has(sig(s))
  })
  for (const s of keep) changed.add(s.owner)
  const ids = new Map(keep.map((s, i) => [s.id, i]))
  const steps = keep.map((s, i) => ({
    ...s,
    id: i,
    deps: s.deps.flatMap((d) => (ids.has(d) ? [ids.get(d)!] : [])),
  }))
  remove.sort((a, b) => a.rank - b.rank)
  return { remove: remove.map((x) => x.r), steps, changed: [...changed].sort() }
}
