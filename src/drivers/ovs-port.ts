/**
 * What the ovs driver and the vlan driver's OVS backend share: a veth pair whose host end is a
 * port of an Open vSwitch bridge with an access tag and/or trunk VLANs. The bridge is made when
 * missing and marked `external_ids:nsdn-created=true`, so the del of its last port removes it;
 * a bridge someone else made is never removed.
 * @module
 */
import path from 'node:path'
import {
  ConfigError,
  KernelFeatureError,
  NsdnError,
  errorMessage,
  ignoreNotFound,
  isCode,
} from '../errors.js'
import { withFileLock } from '../files.js'
import { tryLinkByName } from '../netlink/link.js'
import { Rtnl } from '../netlink/rtnl.js'
import { NetNs } from '../netns/netns.js'
import {
  defaultDatapathType,
  ovsClient,
  ovsRunDir,
  requireSwitch,
  switchLog,
  switchRunning,
} from '../ovs/daemon.js'
import { softwareTxChecksum } from '../ovs/netdev.js'
import { type DatapathType, type Vsctl, cmd, ovsSet } from '../ovs/vsctl.js'
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
 * Run fn holding the bridge's lock (a flock in the OVS run directory). Creating a missing bridge
 * and adding a port to it, and removing a bridge whose last port went, each run under it, so
 * a bridge is never removed between another attach's check and its add-port.
 */
function withBridgeLock<T>(bridge: string, fn: () => Promise<T>): Promise<T> {
  return withFileLock(path.join(ovsRunDir(), `bridge-${bridge}.lock`), fn)
}

/** A client for removals: without a running switch they change the database and do not wait. */
const removalClient = (): Vsctl => ovsClient({ noWait: !switchRunning() })

/**
 * Create the bridge when missing, marked as nsdn's. Returns the bridge's datapath type ("" in
 * OVSDB means the default, "system"). Refuses, before anything changes, what ovs-vswitchd could
 * not set up: the kernel datapath without the openvswitch module, a name some device has.
 */
async function ensureBridge(vs: Vsctl, c: OvsPortConf, rb: Rollback): Promise<string> {
  const [row] = await vs.listRows('Bridge', { records: [c.bridge], columns: ['datapath_type'] })
  if (row) return String(row.datapath_type)
  const available = await defaultDatapathType()
  const datapathType = c.datapathType ?? available
  if (datapathType === 'system' && available !== 'system')
    throw new KernelFeatureError(
      'the Open vSwitch kernel datapath',
      'CONFIG_OPENVSWITCH',
      'set "datapathType": "netdev" (the userspace datapath), or load the openvswitch module',
    )
  const clash = await tryLinkByName(Rtnl.for(NetNs.current()), c.bridge)
  if (clash)
    throw new NsdnError('E_EXISTS', `a network device named "${c.bridge}" exists already`, {
      details: `its kind is ${clash.kind ?? 'none (a physical or loopback device)'}`,
      hint: 'an OVS bridge makes a device of its own name: set "bridge" to another name',
    })
  // Pushed first: ovs-vsctl may commit the bridge and then report that the switch failed it.
  rb.push(`ovs bridge ${c.bridge}`, () => removeBridgeIfUnused(c.bridge))
  await vs.run([
    ...cmd.addBr(c.bridge, { datapathType }),
    ['set', 'Bridge', c.bridge, `external_ids:${CREATED_BY_NSDN}=true`],
  ])
  return datapathType
}

/**
 * What ovs-vswitchd says about the named interfaces (their `error` column; `ofport` -1 means
 * it could not open the device): one line each, none when all work.
 */
async function interfaceErrors(vs: Vsctl, names: readonly string[]): Promise<string[]> {
  const rows = await vs.listRows('Interface', {
    records: names,
    columns: ['name', 'error', 'ofport'],
  })
  return rows.flatMap((r) => {
    const error = ovsSet(r.error)[0]
    if (error !== undefined) return [`OVS interface "${String(r.name)}": ${String(error)}`]
    if (ovsSet(r.ofport)[0] === -1)
      return [`OVS interface "${String(r.name)}" has no OpenFlow port`]
    return []
  })
}

/**
 * Remove the bridge when nsdn created it and no port is left on it (`list-ports` leaves out the
 * bridge's own internal port). Equivalent: `ovs-vsctl --if-exists del-br BR`.
 */
function removeBridgeIfUnused(bridge: string): Promise<void> {
  return withBridgeLock(bridge, async () => {
    const vs = removalClient()
    const rows = await vs.listRows('Bridge', { records: [bridge], columns: ['external_ids'] })
    const ids = rows[0]?.external_ids
    if (!(ids instanceof Map) || ids.get(CREATED_BY_NSDN) !== 'true') return
    const ports = await ignoreNotFound(vs.listPorts(bridge))
    if (ports?.length === 0) await vs.delBr(bridge)
  })
}

/**
 * Add: bridge (when missing), veth pair, OVS port with tag and trunks in one ovs-vsctl call,
 * IPAM, container addresses. Atomic: a failure after any step undoes the steps before it.
 * Nothing starts while the switch is down: OVSDB would take the port and nothing would apply it.
 */
export function ovsPortAdd(
  c: OvsPortConf,
  ip: IpSetup,
  ctx: AttachContext & { netns: NetNs },
): Promise<CniResult> {
  const vs = ovsClient()
  requireSwitch()
  const port = ovsPortName(ctx)
  return Rollback.guard(async (rb) => {
    const pair = await withBridgeLock(c.bridge, async () => {
      explainWhy(`the Open vSwitch bridge ${c.bridge} (made when missing)`)
      const datapathType = await ensureBridge(vs, c, rb)
      failpoint('bridge')
      const pair = await setupVeth(ctx, NetNs.current(), port, rb, {
        ...(c.mtu !== undefined ? { mtu: c.mtu } : {}),
      })
      // The userspace datapath forwards frames as they are: TCP needs software checksums.
      if (datapathType === 'netdev') {
        explainWhy('netdev (userspace) datapath: checksums in software, else TCP stalls')
        await softwareTxChecksum(ctx.netns, ctx.ifname)
      }
      failpoint('veth')
      const vlans = { ...(c.tag !== undefined ? { tag: c.tag } : {}), trunks: c.trunks }
      explainWhy(
        `the OVS port: access VLAN ${c.tag ?? 'none'}, trunks ${c.trunks.join(',') || 'none'}`,
      )
      // Pushed first: a switch that dies now leaves the committed row behind a timeout.
      rb.push(`ovs port ${port}`, () => removalClient().delPort(port, c.bridge))
      await vs.run(cmd.addPort(c.bridge, port, vlans))
      const errors = await interfaceErrors(vs, [c.bridge, port])
      if (errors.length)
        throw new NsdnError('E_EXEC', errors.join('; '), { hint: `see ${switchLog()}` })
      return pair
    })
    failpoint('port')
    const addrs = await setupAddresses(ip, ctx, rb, 1)
    return { interfaces: vethInterfaces(pair, ctx.netnsPath), ...addrs }
  })
}

/**
 * Del: the port, the pair, the addresses' leases, and the bridge when nsdn created it and this
 * was its last port. Anything already gone is fine. With Open vSwitch down it frees the rest
 * and then fails with E_UNAVAILABLE naming the port it could not remove (a later del does).
 */
export async function ovsPortDel(c: OvsPortConf, ip: IpSetup, ctx: AttachContext): Promise<void> {
  const port = ovsPortName(ctx)
  let unavailable: unknown
  try {
    await removalClient().delPort(port, c.bridge)
    await removeBridgeIfUnused(c.bridge)
  } catch (err) {
    if (!isCode(err, 'E_UNAVAILABLE')) throw err
    unavailable = err
  }
  await teardownVeth(NetNs.current(), port)
  await releaseAddresses(ip, ctx)
  if (unavailable)
    throw new NsdnError(
      'E_UNAVAILABLE',
      `freed veth "${port}" and the leases, but not OVS port "${port}" on bridge "${c.bridge}": ` +
        errorMessage(unavailable),
      { cause: unavailable, hint: 'start Open vSwitch ("nsdn ovs start") and detach again' },
    )
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
  if (!switchRunning()) diffs.add('ovs-vswitchd is not running: the switch is down')
  const name = ovsPortName(ctx)
  const br = await vs.portToBr(name)
  const p = br === undefined ? undefined : await vs.getPort(name)
  if (!p) diffs.add(`OVS port "${name}" is missing (expected on bridge "${c.bridge}")`)
  else {
    for (const e of await interfaceErrors(vs, [c.bridge, name])) diffs.add(e)
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
