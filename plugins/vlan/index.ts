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
import { validIfName } from '../../src/validate.js'

/** In the order the probe tries them. */
export const BACKENDS = ['8021q', 'bridge', 'ovs'] as const
export type Backend = (typeof BACKENDS)[number]

export interface VlanConf extends NetConfBase {
  /** Chosen by config; undefined: the first available backend the config allows. */
  backend?: Backend
  /** The access VLAN: untagged inside the container. */
  vlanId?: number
  /** 8021q: the trunk device the sub-interface sits on (CNI vlan's `master`, or `link`). */
  master?: string
  /** bridge and ovs: the bridge the container's veth is a port of. */
  bridge?: string
  /** bridge and ovs: VLANs the port also carries, tagged. */
  trunk: number[]
  mtu?: number
  ipam?: IpamConf
}

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
  // Without a backend, the config must suit every backend it lets the probe pick.
  const auto = backend === undefined
  const may8021q = backend === '8021q' || (auto && (master !== undefined || bridge === undefined))
  if (may8021q) {
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
  }
  if (backend === 'bridge' || backend === 'ovs' || (auto && bridge !== undefined)) {
    if (bridge === undefined)
      throw new ConfigError(`is required with backend "${backend}"`, at('bridge'))
    if (vlanId === undefined && !trunk.length)
      throw new ConfigError('a bridge port needs a VLAN', at('vlanId'), {
        hint: 'set "vlanId" (access VLAN), "trunk" (tagged VLANs), or both',
      })
  }
  return {
    ...base,
    ...(backend ? { backend } : {}),
    ...(vlanId !== undefined ? { vlanId } : {}),
    ...(master !== undefined ? { master } : {}),
    ...(bridge !== undefined ? { bridge } : {}),
    trunk,
    ...(mtu !== undefined ? { mtu } : {}),
    ...(o.ipam !== undefined ? { ipam: parseIpamConf(o.ipam, at('ipam')) } : {}),
  }
}

/**
 * The backend: the configured one, else the first available of 8021q (when `master` is set),
 * bridge and ovs (when `bridge` is set). The probes run once per process.
 */
export async function pickBackend(c: VlanConf): Promise<Backend> {
  if (c.backend) return c.backend
  if (c.master !== undefined && (await probeLinkKind('vlan'))) return '8021q'
  if (c.bridge === undefined) throw linkFeatureError('vlan')
  return (await probeBridgeVlanFiltering()) ? 'bridge' : 'ovs'
}

const ip = (c: VlanConf): IpSetup => ({ network: c.name, ipam: c.ipam })

const ovsPort = (c: VlanConf): OvsPortConf => ({
  bridge: c.bridge ?? '',
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
async function addSubInterface(c: VlanConf, ctx: Ctx): Promise<CniResult> {
  await requireLinkKind('vlan')
  const h = Rtnl.for(NetNs.current())
  const cn = Rtnl.for(ctx.netns)
  const tmp = tmpName(ctx)
  return Rollback.guard(async (rb) => {
    await linkAddVlan(h, tmp, c.master ?? '', c.vlanId ?? 0)
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
async function addBridgePort(c: VlanConf, ctx: Ctx): Promise<CniResult> {
  await requireBridgeVlanFiltering()
  const hostNs = NetNs.current()
  const h = Rtnl.for(hostNs)
  const bridge = c.bridge ?? ''
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

async function add(c: VlanConf, ctx: AttachContext): Promise<CniResult> {
  const { netns } = ctx
  if (!netns) throw noNetns()
  const backend = await pickBackend(c)
  const x = { ...ctx, netns }
  const r =
    backend === '8021q'
      ? await addSubInterface(c, x)
      : backend === 'bridge'
        ? await addBridgePort(c, x)
        : await ovsPortAdd(ovsPort(c), ip(c), x)
  return { ...(c.cniVersion ? { cniVersion: c.cniVersion } : {}), ...r }
}

/** Remove what add made; anything gone already (the netns too) is fine. */
async function del(c: VlanConf, ctx: AttachContext): Promise<void> {
  // No backend available: add made nothing, and the 8021q cleanup needs no kernel feature.
  const backend = await pickBackend(c).catch((err: unknown) => {
    if (isCode(err, 'E_KERNEL_FEATURE')) return '8021q' as const
    throw err
  })
  if (backend === 'ovs') return ovsPortDel(ovsPort(c), ip(c), ctx)
  const host = NetNs.current()
  if (backend === 'bridge') await teardownVeth(host, hostVethName(ctx.containerId, ctx.ifname))
  else {
    // A crashed add may have left the sub-interface under its temporary name.
    await ignoreNotFound(linkDel(Rtnl.for(host), tmpName(ctx)))
    if (ctx.netns) await ignoreNotFound(linkDel(Rtnl.for(ctx.netns), ctx.ifname))
  }
  await releaseAddresses(ip(c), ctx)
}

async function check(c: VlanConf, ctx: AttachContext): Promise<void> {
  const { netns } = ctx
  if (!netns) throw noNetns()
  const backend = await pickBackend(c)
  const subject = `the vlan (${backend}) attachment`
  if (backend === 'ovs') return ovsPortCheck(ovsPort(c), ip(c), { ...ctx, netns }, subject)
  const prev = recorded(ctx)
  const diffs = new Diffs()
  const cl = await checkAddresses(ip(c), { ...ctx, netns }, prev, diffs)
  if (backend === '8021q') {
    if (cl && cl.kind !== 'vlan') diffs.add(`"${ctx.ifname}" in ${netns} is not a VLAN device`)
  } else {
    const h = Rtnl.for(NetNs.current())
    const port = hostVethName(ctx.containerId, ctx.ifname)
    const [br, hv] = [await tryLinkByName(h, c.bridge ?? ''), await tryLinkByName(h, port)]
    if (!hv) diffs.add(`host veth "${port}" is missing`)
    else if (!br || hv.master !== br.index)
      diffs.add(`host veth "${port}" is not a port of bridge "${c.bridge}"`)
  }
  diffs.throwIfAny(`${subject} ${ctx.containerId}/${ctx.ifname}`)
}

export const driver: NetworkDriver<VlanConf> = { name: 'vlan', parseConf, add, del, check }
