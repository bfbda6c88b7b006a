/**
 * Queueing disciplines: a tbf rate limit on a device's egress, and the probe for netem.
 * @module
 */
import fs from 'node:fs'
import type { Op } from '../op.js'
import type { LinkRef } from './link.js'
import { linkByName } from './link.js'
import type { Rtnl } from './rtnl.js'
import { delRootQdisc, netemQdisc, tbfQdisc } from './wire/tc.js'

/** Kernel ticks per microsecond, as tc reads them from /proc/net/psched. */
function tickInUsec(): number {
  const [t2us = 1000, us2t = 64, res = 1_000_000] = fs
    .readFileSync('/proc/net/psched', 'utf8')
    .trim()
    .split(/\s+/)
    .map((x) => parseInt(x, 16))
  // tc's compatibility rule: a nanosecond clock advertises 1000 for 1.
  const t = res === 1_000_000_000 ? us2t : t2us
  return (t / us2t) * (res / 1_000_000)
}

export interface TbfOpts {
  /** Bits per second. */
  rate: number
  /** Bytes. */
  burst: number
  /** Milliseconds. */
  latency: number
}

/** Equivalent: `tc qdisc add dev DEV root tbf rate Rbit burst B latency Lms`. */
export async function qdiscAddTbf(h: Rtnl, dev: LinkRef, o: TbfOpts): Promise<void> {
  const l = typeof dev === 'string' ? await linkByName(h, dev) : dev
  const op: Op = {
    kind: 'tc.qdisc.tbf',
    ...(h.nsName ? { ns: h.nsName } : {}),
    dev: l.name,
    rate: o.rate,
    burst: o.burst,
    latency: o.latency,
  }
  const req = tbfQdisc({
    index: l.index,
    rate: Math.round(o.rate / 8),
    burst: o.burst,
    latencyUs: o.latency * 1000,
    tickInUsec: tickInUsec(),
  })
  await h.exec(op, () => h.request(req).then(() => undefined), undefined)
}

/** Equivalent: `tc qdisc del dev DEV root`. */
export async function qdiscDelRoot(h: Rtnl, dev: LinkRef): Promise<void> {
  const l = typeof dev === 'string' ? await linkByName(h, dev) : dev
  const op: Op = { kind: 'tc.qdisc.del', ...(h.nsName ? { ns: h.nsName } : {}), dev: l.name }
  await h.exec(op, () => h.request(delRootQdisc(l.index)).then(() => undefined), undefined)
}

/** The netem probe's request on lo (for features.ts). */
export const netemProbe = (): ReturnType<typeof netemQdisc> => netemQdisc(1)
