/**
 * The ovs driver: a veth pair whose host end is a port of an Open vSwitch bridge, as ovs-cni
 * does it: an access VLAN (`vlan`) and/or trunk VLANs (`trunk`) on the port, addresses from
 * IPAM. The bridge is created when missing (userspace datapath when the kernel lacks the
 * openvswitch module) and removed with its last port when nsdn created it. See README.md.
 * @module
 */
import type { IpSetup } from '../../src/drivers/addressing.js'
import type { NetConfBase, NetworkDriver } from '../../src/drivers/api.js'
import { fieldPath, optIntAt, optMtuAt, parseBase } from '../../src/drivers/conf.js'
import {
  type OvsPortConf,
  ovsPortAdd,
  ovsPortCheck,
  ovsPortDel,
  parseTrunks,
} from '../../src/drivers/ovs-port.js'
import { ConfigError, NsdnError } from '../../src/errors.js'
import { stringAt } from '../../src/ipam/fields.js'
import { type IpamConf, parseIpamConf } from '../../src/ipam/index.js'
import type { DatapathType } from '../../src/ovs/vsctl.js'
import { validIfName } from '../../src/validate.js'

export interface OvsConf extends NetConfBase {
  /** The OVS bridge; created when missing. */
  bridge: string
  /** Access VLAN (OVS Port tag). */
  vlan?: number
  /** Trunk VLANs (OVS Port trunks), sorted. */
  trunk: number[]
  mtu?: number
  /** For a bridge nsdn creates; default: netdev without the openvswitch module. */
  datapathType?: DatapathType
  ipam?: IpamConf
}

function parseConf(raw: unknown, where = 'conf'): OvsConf {
  const { o, base } = parseBase(raw, 'ovs', where)
  const at = (k: string): string => fieldPath(where, k)
  if (o.bridge === undefined)
    throw new ConfigError('is required: the OVS bridge to attach to', at('bridge'), {
      hint: '"bridge": "br-ovs" (created when missing)',
    })
  const dp = o.datapathType
  if (dp !== undefined && dp !== 'system' && dp !== 'netdev')
    throw new ConfigError(`unknown datapath type ${JSON.stringify(dp)}`, at('datapathType'), {
      hint: '"netdev" (userspace) or "system" (needs the openvswitch kernel module)',
    })
  const vlan = optIntAt(o, 'vlan', where, 0, 4095)
  const mtu = optMtuAt(o, where)
  return {
    ...base,
    bridge: validIfName(stringAt(o.bridge, at('bridge')), at('bridge')),
    ...(vlan !== undefined ? { vlan } : {}),
    trunk: o.trunk === undefined ? [] : parseTrunks(o.trunk, at('trunk')),
    ...(mtu !== undefined ? { mtu } : {}),
    ...(dp !== undefined ? { datapathType: dp } : {}),
    ...(o.ipam !== undefined ? { ipam: parseIpamConf(o.ipam, at('ipam')) } : {}),
  }
}

const port = (c: OvsConf): OvsPortConf => ({
  bridge: c.bridge,
  ...(c.vlan !== undefined ? { tag: c.vlan } : {}),
  trunks: c.trunk,
  ...(c.mtu !== undefined ? { mtu: c.mtu } : {}),
  ...(c.datapathType !== undefined ? { datapathType: c.datapathType } : {}),
})

const ip = (c: OvsConf): IpSetup => ({ network: c.name, ipam: c.ipam })

const noNetns = (): NsdnError =>
  new NsdnError('E_NETNS', 'the ovs driver needs the container network namespace')

export const driver: NetworkDriver<OvsConf> = {
  name: 'ovs',
  parseConf,
  async add(c, ctx) {
    const { netns } = ctx
    if (!netns) throw noNetns()
    const r = await ovsPortAdd(port(c), ip(c), { ...ctx, netns })
    return { ...(c.cniVersion ? { cniVersion: c.cniVersion } : {}), ...r }
  },
  del: (c, ctx) => ovsPortDel(port(c), ip(c), ctx),
  async check(c, ctx) {
    const { netns } = ctx
    if (!netns) throw noNetns()
    await ovsPortCheck(port(c), ip(c), { ...ctx, netns }, 'the ovs attachment')
  },
}
