/**
 * What the ovs driver and the vlan driver's OVS backend share: a veth pair whose host end is a
 * port of an Open vSwitch bridge with an access tag and/or trunk VLANs. The bridge is made when
 * missing and marked `external_ids:nsdn-created=true`, so the del of its last port removes it;
 * a bridge someone else made is never removed.
 * @module
 */
import { ConfigError, ignoreNotFound } from '../errors.js'
import { tryLinkByName } from '../netlink/link.js'
import { Rtnl } from '../netlink/rtnl.js'
import { NetNs } from '../netns/netns.js'
import { defaultDatapathType, ovsClient } from '../ovs/daemon.js'
import { softwareTxChecksum } from '../ovs/netdev.js'
import { type DatapathType, type Vsctl, cmd } from '../ovs/vsctl.js'
import { parseIntIn } from '../validate.js'
import { type IpSetup, checkAddresses, releaseAddresses, setupAddresses } from './addressing.js'
import type { AttachContext, CniResult } from './api.js'
import { Diffs, recorded } from './check.js'
import { explainWhy } from '../op.js'
import { Rollback, failpoint } from './rollback.js'
import { hostVethName, setupVeth, teardownVeth, vethInterfaces } from './veth.js'

/** The Bridge external_ids key that says nsdn created the bridge. */
export const CREATED_BY_NSDN = 'nsdn-created'

export interface OvsPortConf {
  bridge: string
  /** Access VLAN: the port's frames are untagged, in this VLAN. */
  tag?: number
  /** VLANs the port carries tagged (a trunk port). */
  trunks: number[]
  mtu?: number
  /** Used when the bridge is created; default: {@link defaultDatapathType}. */
  datapathType?: DatapathType
}

/**
 * A list of VLAN ids, written as ovs-cni writes trunks (`[{"id": 10}, {"minID": 100,
 * "maxID": 199}]`) or as plain numbers; returned sorted, without duplicates.
 */
export function parseTrunks(raw: unknown, where: string, min = 0, max = 4095): number[] {
  if (!Array.isArray(raw))
    throw new ConfigError('must be a list of VLAN ids or {id} / {minID, maxID} objects', where)
  const out = new Set<number>()
  raw.forEach((t: unknown, i) => {
    const at = `${where}[${i}]`
    const vid = (v: unknown, w: string): number => {
      if (typeof v !== 'number') throw new ConfigError('must be a number', w)
      return parseIntIn(v, min, max, w)
    }
    if (typeof t === 'number') return void out.add(vid(t, at))
    if (typeof t !== 'object' || t === null)
      throw new ConfigError('must be a VLAN id, {id} or {minID, maxID}', at)
    const o = t as Record<string, unknown>
    if (o.id !== undefined) {
      if (o.minID !== undefined || o.maxID !== undefined)
        throw new ConfigError('give either id or minID/maxID, not both', at)
      return void out.add(vid(o.id, `${at}.id`))
    }
    if (o.minID === undefined || o.maxID === undefined)
      throw new ConfigError('needs id, or both minID and maxID', at)
    const lo = vid(o.minID, `${at}.minID`)
    const hi = vid(o.maxID, `${at}.maxID`)
    if (lo > hi) throw new ConfigError(`minID ${lo} is greater than maxID ${hi}`, at)
    for (let v = lo; v <= hi; v++) out.add(v)
  })
  return [...out].sort((a, b) => a - b)
}

/** The host end of the pair, which is also the OVS port name. */
const ovsPortName = (ctx: AttachContext): string => hostVethName(ctx.containerId, ctx.ifname)

/**
 * Create the bridge when missing, marked as nsdn's. Returns whether this call created it and
 * the bridge's datapath type ("" in OVSDB means the default, "system").
 */
async function ensureBridge(
  vs: Vsctl,
  c: OvsPortConf,
): Promise<{ created: boolean; datapathType: string }> {
  const [row] = await vs.listRows('Bridge', { records: [c.bridge], columns: ['datapath_type'] })
  if (row) return { created: false, datapathType: String(row.datapath_type) }
  const datapathType = c.datapathType ?? (await defaultDatapathType())
  await vs.run([
    ...cmd.addBr(c.bridge, { datapathType }),
    ['set', 'Bridge', c.bridge, `external_ids:${CREATED_BY_NSDN}=true`],
  ])
  return { created: true, datapathType }
}

/**
 * Remove the bridge when nsdn created it and no port is left on it (`list-ports` leaves out the
 * bridge's own internal port). Equivalent: `ovs-vsctl --if-exists del-br BR`.
 */
async function removeBridgeIfUnused(vs: Vsctl, bridge: string): Promise<void> {
  // Runtimes run DELs concurrently: another one may remove the bridge between these reads.
  const rows = await ignoreNotFound(
    vs.listRows('Bridge', { records: [bridge], columns: ['external_ids'] }),
  )
  const ids = rows?.[0]?.external_ids
  if (!(ids instanceof Map) || ids.get(CREATED_BY_NSDN) !== 'true') return
  const ports = await ignoreNotFound(vs.listPorts(bridge))
  if (ports?.length === 0) await vs.delBr(bridge)
}

/**
 * Add: bridge (when missing), veth pair, OVS port with tag and trunks in one ovs-vsctl call,
 * IPAM, container addresses. Atomic: a failure after any step undoes the steps before it.
 */
export function ovsPortAdd(
  c: OvsPortConf,
  ip: IpSetup,
  ctx: AttachContext & { netns: NetNs },
): Promise<CniResult> {
  const vs = ovsClient()
  const port = ovsPortName(ctx)
  return Rollback.guard(async (rb) => {
    explainWhy(`the Open vSwitch bridge ${c.bridge} (made when missing)`)
    const br = await ensureBridge(vs, c)
    if (br.created) rb.push(`ovs bridge ${c.bridge}`, () => removeBridgeIfUnused(vs, c.bridge))
    failpoint('bridge')
    const pair = await setupVeth(ctx, NetNs.current(), port, rb, {
      ...(c.mtu !== undefined ? { mtu: c.mtu } : {}),
    })
    // The userspace datapath forwards frames as they are: TCP needs software checksums.
    if (br.datapathType === 'netdev') {
      explainWhy('netdev (userspace) datapath: checksums in software, else TCP stalls')
      await softwareTxChecksum(ctx.netns, ctx.ifname)
    }
    failpoint('veth')
    const vlans = { ...(c.tag !== undefined ? { tag: c.tag } : {}), trunks: c.trunks }
    explainWhy(
      `the OVS port: access VLAN ${c.tag ?? 'none'}, trunks ${c.trunks.join(',') || 'none'}`,
    )
    await vs.run(cmd.addPort(c.bridge, port, vlans))
    rb.push(`ovs port ${port}`, () => vs.delPort(port, c.bridge))
    failpoint('port')
    const addrs = await setupAddresses(ip, ctx, rb, 1)
    return { interfaces: vethInterfaces(pair, ctx.netnsPath), ...addrs }
  })
}

/**
 * Del: the port, the pair, the addresses' leases, and the bridge when nsdn created it and this
 * was its last port. Anything already gone is fine.
 */
export async function ovsPortDel(c: OvsPortConf, ip: IpSetup, ctx: AttachContext): Promise<void> {
  const vs = ovsClient()
  const port = ovsPortName(ctx)
  await vs.delPort(port, c.bridge)
  await teardownVeth(NetNs.current(), port)
  await releaseAddresses(ip, ctx)
  await removeBridgeIfUnused(vs, c.bridge)
}

const show = (v: readonly number[]): string => (v.length ? v.join(',') : 'none')

/**
 * Check: the port is on the bridge with the configured tag and trunks, the host end exists
 * and is the peer of the container interface, which has the recorded addresses and routes.
 * Every difference is reported at once.
 */
export async function ovsPortCheck(
  c: OvsPortConf,
  ip: IpSetup,
  ctx: AttachContext & { netns: NetNs },
  subject: string,
): Promise<void> {
  const prev = recorded(ctx)
  const diffs = new Diffs()
  const vs = ovsClient()
  const name = ovsPortName(ctx)
  const br = await vs.portToBr(name)
  const p = br === undefined ? undefined : await vs.getPort(name)
  if (!p) diffs.add(`OVS port "${name}" is missing (expected on bridge "${c.bridge}")`)
  else {
    if (br !== c.bridge) diffs.add(`OVS port "${name}" is on bridge "${br}", not "${c.bridge}"`)
    if (p.tag !== c.tag)
      diffs.add(`OVS port "${name}" has tag ${p.tag ?? 'none'}, expected ${c.tag ?? 'none'}`)
    const trunks = [...p.trunks].sort((a, b) => a - b)
    if (show(trunks) !== show(c.trunks))
      diffs.add(`OVS port "${name}" has trunks ${show(trunks)}, expected ${show(c.trunks)}`)
  }
  const hv = await tryLinkByName(Rtnl.for(NetNs.current()), name)
  if (!hv) diffs.add(`host veth "${name}" is missing`)
  const cl = await checkAddresses(ip, ctx, prev, diffs)
  if (cl && hv && cl.link !== hv.index)
    diffs.add(`"${ctx.ifname}" in ${ctx.netns} is not the peer of host veth "${name}"`)
  diffs.throwIfAny(`${subject} ${ctx.containerId}/${ctx.ifname}`)
}
