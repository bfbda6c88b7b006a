/**
 * What the page can do to a lab: set or clear a link's rate limit, run its checks, explain it.
 * Each works from the lab's record, as `nsdn lab verify|explain NAME` do.
 * @module
 */
import { ConfigError, NsdnError } from '../errors.js'
import { explainScript } from '../lab/explain.js'
import { tbfBurst } from '../lab/plan.js'
import { parseRate } from '../lab/resolve.js'
import { type CheckResult, verify } from '../lab/verify.js'
import { qdiscAddTbf, qdiscDelRoot } from '../netlink/qdisc.js'
import { Rtnl } from '../netlink/rtnl.js'
import { linkId, recordedLab } from './topo.js'

/** The latency of the token bucket a lab's `rate:` makes (plan.ts), milliseconds. */
const TBF_LATENCY_MS = 50

/**
 * Rate "10mbit" on both ends of the link, as `rate:` in a lab file does (a tbf on each end's
 * egress); null removes the limit. Equivalent: `tc qdisc del dev DEV root` then
 * `tc qdisc add dev DEV root tbf rate R burst B latency 50ms`, on each end.
 */
export async function setLinkRate(labName: string, id: string, rate: string | null): Promise<void> {
  const lab = recordedLab(labName)
  const link = lab.links.find((k) => linkId(k.index) === id)
  if (!link)
    throw new NsdnError('E_NOT_FOUND', `lab "${labName}" has no link "${id}"`, {
      hint: `its links: ${lab.links.map((k) => linkId(k.index)).join(', ')}`,
    })
  const bits = rate === null ? undefined : parseRate(rate, 'rate')
  if (bits === 0)
    throw new ConfigError('0 would stop the link', 'rate', {
      hint: 'give a rate above 0, or remove the limit',
    })
  for (const e of [link.a, link.b]) {
    const h = Rtnl.named(e.ns)
    await qdiscDelRoot(h, e.dev)
    if (bits !== undefined)
      await qdiscAddTbf(h, e.dev, { rate: bits, burst: tbfBurst(bits), latency: TBF_LATENCY_MS })
  }
}

/** `nsdn lab verify NAME`: every check of the lab, run now. */
export function runVerify(labName: string): Promise<CheckResult[]> {
  return verify(recordedLab(labName))
}

/** `nsdn lab explain NAME`: the script that builds the lab. */
export function explainLab(labName: string): Promise<string> {
  return explainScript(recordedLab(labName))
}
