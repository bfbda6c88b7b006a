/**
 * The vlan driver: the container's interface in one VLAN (and, on a bridge port, trunk VLANs),
 * by one of three backends: an 802.1Q sub-interface of a trunk device (as the CNI vlan plugin),
 * a port of a VLAN-filtering Linux bridge, or a tagged port of an Open vSwitch bridge (the ovs
 * driver's code). The first two need kernel options; without them add fails before creating
 * anything and names the option. See README.md.
 * @module
 */
import {
  type IpSetup,
  checkAddresses,
  releaseAddresses,
  setupAddresses,
} from '../../src/drivers/addressing.js'
import type { AttachContext, CniResult, NetConfBase, NetworkDriver } from '../../src/drivers/api.js'
import { Diffs, recorded } from '../../src/drivers/check.js'
import { fieldPath, optIntAt, optMtuAt, parseBase } from '../../src/drivers/conf.js'
import {
  type OvsPortConf,
  ovsPortAdd,
  ovsPortCheck,
  ovsPortDel,
  parseTrunks,
} from '../../src/drivers/ovs-port.js'
import { Rollback, failpoint } from '../../src/drivers/rollback.js'
import { hostVethName, setupVeth, teardownVeth, vethInterfaces } from '../../src/drivers/veth.js'
import { ConfigError, NsdnError, ignoreNotFound, isCode } from '../../src/errors.js'
import { stringAt } from '../../src/ipam/fields.js'
import { type IpamConf, parseIpamConf } from '../../src/ipam/index.js'
import { bridgeVlanAdd } from '../../src/netlink/bridge-vlan.js'
import {
  probeBridgeVlanFiltering,
  probeLinkKind,
  requireBridgeVlanFiltering,
  requireLinkKind,
} from '../../src/netlink/features.js'
import {
  linkAddBridge,
  linkAddVlan,
  linkByName,
  linkDel,
  linkFeatureError,
  linkList,
  linkSet,
  tryLinkByName,
} from '../../src/netlink/link.js'
import { Rtnl } from '../../src/netlink/rtnl.js'
import { NetNs } from '../../src/netns/netns.js'
import { explainWhy } from '../../src/op.js'
import { validIfName } from '../../src/validate.js'

/** In the order the probe tries them. */
export const BACKENDS = ['8021q', 'bridge', 'ovs'] as const
export type Backend = (typeof BACKENDS)[number]

interface Common extends NetConfBase {
  mtu?: number
  ipam?: IpamConf
}

/** The sub-interface's fields: the trunk device (CNI vlan's `master`, or `link`) and the VLAN. */
interface SubIfFields {
  master: string
  vlanId: number
}

/** A bridge port's fields: the bridge, the access VLAN (untagged inside), tagged trunk VLANs. */
interface PortFields {
  bridge: string
  vlanId?: number
  trunk: number[]
}

/** backend "8021q": `<master>.<vlanId>`, moved into the container. */
export interface SubIfConf extends Common, SubIfFields {
  backend: '8021q'
}

/** backend "bridge" (a VLAN-filtering Linux bridge) or "ovs" (a tagged Open vSwitch port). */
export interface PortConf extends Common, PortFields {
  backend: 'bridge' | 'ovs'
}

/**
 * No backend configured: the first available the config allows: 8021q when it gives `master`,
 * else (or when the kernel lacks 802.1Q) a port of `bridge`, filtering or OVS. Decided by probe
 * ({@link resolveBackend}).
 */
export interface AutoConf extends Common {
  backend: 'auto'
  sub?: SubIfFields
  port?: PortFields
}

export type VlanConf = SubIfConf | PortConf | AutoConf

function parseConf(raw: unknown, where = 'conf'): VlanConf {
  const { o, base } = parseBase(raw, 'vlan', where)
  const at = (k: string): string => fieldPath(where, k)
  const b = o.backend
  if (b !== undefined && !BACKENDS.includes(b as Backend))
    throw new ConfigError(`unknown backend ${JSON.stringify(b)}`, at('backend'), {
      hint: `one of ${BACKENDS.join(', ')}; or leave it out to use the first available`,
    })
  const backend = b as Backend | undefined
  if (o.master !== undefined && o.link !== undefined)
    throw new ConfigError('give master or link, not both (they are the same)', at('link'))
  const masterKey = o.link !== undefined ? 'link' : 'master'
  const master =
    o[masterKey] === undefined
      ? undefined
      : validIfName(stringAt(o[masterKey], at(masterKey)), at(masterKey))
  const bridge =
    o.bridge === undefined ? undefined : validIfName(stringAt(o.bridge, at('bridge')), at('bridge'))
  const vlanId = optIntAt(o, 'vlanId', where, 1, 4094)
  const trunk = o.trunk === undefined ? [] : parseTrunks(o.trunk, at('trunk'), 1, 4094)
  const mtu = optMtuAt(o, where)
  const common: Common = {
    ...base,
    ...(mtu !== undefined ? { mtu } : {}),
    ...(o.ipam !== undefined ? { ipam: parseIpamConf(o.ipam, at('ipam')) } : {}),
  }
  // Without a backend, the config must suit every backend it lets the probe pick.
  const auto = backend === undefined
  const subIf = (): SubIfFields => {
    if (master === undefined)
      throw new ConfigError('is required: the trunk device of the sub-interface', at('master'), {
        hint: auto ? 'give "master" (802.1Q) or "bridge" (a bridge port)' : '"master": "eth0"',
      })
    if (vlanId === undefined)
      throw new ConfigError('is required for an 802.1Q sub-interface', at('vlanId'))
    if (trunk.length)
      throw new ConfigError('an 802.1Q sub-interface carries one VLAN', at('trunk'), {
        hint: 'trunks need a bridge port: set "bridge" and "backend": "bridge" or "ovs"',
      })
    return { master, vlanId }
  }
  const port = (): PortFields => {
    if (bridge === undefined)
      throw new ConfigError(`is required with backend "${backend}"`, at('bridge'))
    if (vlanId === undefined && !trunk.length)
      throw new ConfigError('a bridge port needs a VLAN', at('vlanId'), {
        hint: 'set "vlanId" (access VLAN), "trunk" (tagged VLANs), or both',
      })
    return { bridge, ...(vlanId !== undefined ? { vlanId } : {}), trunk }
  }
  if (backend === '8021q') return { ...common, backend, ...subIf() }
  if (backend !== undefined) return { ...common, backend, ...port() }
  return {
    ...common,
    backend: 'auto',
    ...(master !== undefined || bridge === undefined ? { sub: subIf() } : {}),
    ...(bridge !== undefined ? { port: port() } : {}),
  }
}

/** The config of the backend that serves `c`: itself, or what the probes (run once) choose. */
async function resolveBackend(c: VlanConf): Promise<SubIfConf | PortConf> {
  if (c.backend !== 'auto') return c
  const { sub, port, backend: _, ...common } = c
  if (sub && (await probeLinkKind('vlan'))) return { ...common, backend: '8021q', ...sub }
  if (!port) throw linkFeatureError('vlan')
  const backend = (await probeBridgeVlanFiltering()) ? 'bridge' : 'ovs'
  return { ...common, backend, ...port }
}

/** The backend that serves `c`. */
export async function pickBackend(c: VlanConf): Promise<Backend> {
  return (await resolveBackend(c)).backend
}

const ip = (c: Common): IpSetup => ({ network: c.name, ipam: c.ipam })

const ovsPort = (c: PortConf): OvsPortConf => ({
  bridge: c.bridge,
  ...(c.vlanId !== undefined ? { tag: c.vlanId } : {}),
  trunks: c.trunk,
  ...(c.mtu !== undefined ? { mtu: c.mtu } : {}),
})

type Ctx = AttachContext & { netns: NetNs }

/** Where the sub-interface is made before it moves: unique per attachment, within IFNAMSIZ. */
const tmpName = (ctx: AttachContext): string => hostVethName(ctx.containerId, ctx.ifname, 'vlan')

/**
 * 8021q: `<master>.<vlanId>` made under a temporary name in the host namespace, moved into the
 * container and renamed there to ctx.ifname (the name may exist in the host namespace).
 */
async function addSubInterface(c: SubIfConf, ctx: Ctx): Promise<CniResult> {
  await requireLinkKind('vlan')
  const h = Rtnl.for(NetNs.current())
  const cn = Rtnl.for(ctx.netns)
  const tmp = tmpName(ctx)
  return Rollback.guard(async (rb) => {
    await linkAddVlan(h, tmp, c.master, c.vlanId)
    rb.push(`vlan ${tmp}`, () => ignoreNotFound(linkDel(h, tmp)))
    await linkSet(h, tmp, { netns: ctx.netns })
    rb.push(`vlan ${tmp} in ${ctx.netns}`, () => ignoreNotFound(linkDel(cn, tmp)))
    await linkSet(cn, tmp, { newName: ctx.ifname, ...(c.mtu !== undefined ? { mtu: c.mtu } : {}) })
    rb.push(`vlan ${ctx.ifname} in ${ctx.netns}`, () => ignoreNotFound(linkDel(cn, ctx.ifname)))
    failpoint('link')
    const addrs = await setupAddresses(ip(c), ctx, rb, 0)
    const l = await linkByName(cn, ctx.ifname)
    const iface = { name: l.name, ...(l.address ? { mac: l.address } : {}), sandbox: ctx.netnsPath }
    return { interfaces: [iface], ...addrs }
  })
}

/** Remove the bridge nsdn made for the vlan driver unless a port is still on it. */
async function removeBridgeIfUnused(h: Rtnl, name: string): Promise<void> {
  const br = await tryLinkByName(h, name)
  if (!br || (await linkList(h)).some((l) => l.master === br.index)) return
  await ignoreNotFound(linkDel(h, br))
}

/**
 * bridge: a veth whose host end is a port of a VLAN-filtering bridge (made when missing): the
 * access VLAN as PVID and untagged, trunk VLANs tagged.
 */
async function addBridgePort(c: PortConf, ctx: Ctx): Promise<CniResult> {
  await requireBridgeVlanFiltering()
  const hostNs = NetNs.current()
  const h = Rtnl.for(hostNs)
  const { bridge } = c
  const port = hostVethName(ctx.containerId, ctx.ifname)
  return Rollback.guard(async (rb) => {
    const br = await tryLinkByName(h, bridge)
    if (!br) {
      await linkAddBridge(h, bridge, { up: true, vlanFiltering: true })
      rb.push(`bridge ${bridge}`, () => removeBridgeIfUnused(h, bridge))
    } else if (br.kind !== 'bridge')
      throw new ConfigError(`"${bridge}" is a ${br.kind ?? 'device'}, not a bridge`, 'bridge')
    failpoint('bridge')
    const pair = await setupVeth(ctx, hostNs, port, rb, {
      master: bridge,
      ...(c.mtu !== undefined ? { mtu: c.mtu } : {}),
    })
    failpoint('veth')
    if (c.vlanId !== undefined)
      await bridgeVlanAdd(h, pair.host, c.vlanId, { pvid: true, untagged: true })
    for (const vid of c.trunk) await bridgeVlanAdd(h, pair.host, vid)
    failpoint('port')
    const addrs = await setupAddresses(ip(c), ctx, rb, 1)
    return { interfaces: vethInterfaces(pair, ctx.netnsPath), ...addrs }
  })
}

const noNetns = (): NsdnError =>
  new NsdnError('E_NETNS', 'the vlan driver needs the container network namespace')

async function add(conf: VlanConf, ctx: AttachContext): Promise<CniResult> {
  const { netns } = ctx
  if (!netns) throw noNetns()
  const c = await resolveBackend(conf)
  explainWhy(
    `vlan backend ${c.backend}: ${conf.backend === 'auto' ? WHY_AUTO[c.backend] : 'configured'}`,
  )
  const x = { ...ctx, netns }
  const r =
    c.backend === '8021q'
      ? await addSubInterface(c, x)
      : c.backend === 'bridge'
        ? await addBridgePort(c, x)
        : await ovsPortAdd(ovsPort(c), ip(c), x)
  return { ...(c.cniVersion ? { cniVersion: c.cniVersion } : {}), ...r }
}

/** Why the probe chose a backend, for --explain. */
const WHY_AUTO: Record<Backend, string> = {
  '8021q': 'the kernel has 802.1Q devices',
  bridge: 'the kernel has bridge VLAN filtering (no 802.1Q devices, or no master given)',
  ovs: 'the kernel has neither 802.1Q devices nor bridge VLAN filtering',
}

/** Remove what add made; anything gone already (the netns too) is fine. */
async function del(conf: VlanConf, ctx: AttachContext): Promise<void> {
  // No backend available: add made nothing, and the 8021q cleanup needs no kernel feature.
  const c = await resolveBackend(conf).catch((err: unknown) => {
    if (isCode(err, 'E_KERNEL_FEATURE')) return undefined
    throw err
  })
  if (c?.backend === 'ovs') return ovsPortDel(ovsPort(c), ip(c), ctx)
  const host = NetNs.current()
  if (c?.backend === 'bridge') await teardownVeth(host, hostVethName(ctx.containerId, ctx.ifname))
  else {
    // A crashed add may have left the sub-interface under its temporary name.
    await ignoreNotFound(linkDel(Rtnl.for(host), tmpName(ctx)))
    if (ctx.netns) await ignoreNotFound(linkDel(Rtnl.for(ctx.netns), ctx.ifname))
  }
  await releaseAddresses(ip(conf), ctx)
}

async function check(conf: VlanConf, ctx: AttachContext): Promise<void> {
  const { netns } = ctx
  if (!netns) throw noNetns()
  const c = await resolveBackend(conf)
  const subject = `the vlan (${c.backend}) attachment`
  if (c.backend === 'ovs') return ovsPortCheck(ovsPort(c), ip(c), { ...ctx, netns }, subject)
  const prev = recorded(ctx)
  const diffs = new Diffs()
  const cl = await checkAddresses(ip(c), { ...ctx, netns }, prev, diffs)
  if (c.backend === '8021q') {
    if (cl && cl.kind !== 'vlan') diffs.add(`"${ctx.ifname}" in ${netns} is not a VLAN device`)
  } else {
    const h = Rtnl.for(NetNs.current())
    const port = hostVethName(ctx.containerId, ctx.ifname)
    const [br, hv] = [await tryLinkByName(h, c.bridge), await tryLinkByName(h, port)]
    if (!hv) diffs.add(`host veth "${port}" is missing`)
    else if (!br || hv.master !== br.index)
      diffs.add(`host veth "${port}" is not a port of bridge "${c.bridge}"`)
  }
  diffs.throwIfAny(`${subject} ${ctx.containerId}/${ctx.ifname}`)
}

export const driver: NetworkDriver<VlanConf> = { name: 'vlan', parseConf, add, del, check }
