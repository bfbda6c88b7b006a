/**
 * `nsdn-ipam`: nsdn's IPAM as a CNI IPAM plugin, so the reference plugins (or any runtime) can
 * use it as their `ipam`. It takes the reference host-local config (`ranges`, `subnet`,
 * `rangeStart`, `rangeEnd`, `gateway`, `routes`, `dataDir`, `resolvConf`) and the static one
 * (`addresses`, `routes`, `dns`) unchanged; the mode is `mode`, or static when `addresses` is
 * given. Leases are in host-local's layout, so both plugins can share a data directory.
 * Requested addresses come from CNI_ARGS `IP=`, `runtimeConfig.ips` or `args.cni.ips`.
 * @module
 */
import fs from 'node:fs'
import { NsdnError, errorMessage } from '../errors.js'
import {
  type IpamConf,
  NSDN_IPAM,
  ipamAdd,
  ipamCheck,
  ipamDel,
  ipamGc,
  parseIpamConf,
} from '../ipam/index.js'
import { objectAt } from '../ipam/fields.js'
import { type CniPlugin, type Invocation, validAttachments } from './skel.js'

function conf(inv: Invocation): IpamConf {
  const o = objectAt(inv.conf.ipam, 'ipam')
  return parseIpamConf({ ...o, type: NSDN_IPAM }, 'ipam')
}

function stringList(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []
}

/** Addresses the runtime asks for, in the places the reference host-local reads them. */
function requested(inv: Invocation): string[] {
  const rc = inv.conf.runtimeConfig as { ips?: unknown } | undefined
  const args = inv.conf.args as { cni?: { ips?: unknown } } | undefined
  const fromEnv = (inv.args.get('IP') ?? '').split(',').filter(Boolean)
  return [...fromEnv, ...stringList(rc?.ips), ...stringList(args?.cni?.ips)]
}

const owner = (inv: Invocation) => ({
  network: String(inv.conf.name),
  containerId: inv.containerId,
  ifname: inv.ifname,
})

export const ipamPlugin: CniPlugin = {
  async add(inv) {
    const ips = requested(inv)
    const r = await ipamAdd(conf(inv), {
      ...owner(inv),
      ...(ips.length ? { requestedIps: ips } : {}),
    })
    return { ips: r.ips, routes: r.routes, ...(Object.keys(r.dns).length ? { dns: r.dns } : {}) }
  },
  async del(inv) {
    await ipamDel(conf(inv), owner(inv))
  },
  async check(inv) {
    const held = (await ipamCheck(conf(inv), owner(inv))).ips.map((ip) => ip.address)
    const missing = (inv.prevResult?.ips ?? []).filter((ip) => !held.includes(ip.address))
    if (missing.length)
      throw new NsdnError('E_NOT_FOUND', `no lease for ${missing.map((m) => m.address).join(', ')}`)
  },
  async status(inv) {
    const c = conf(inv)
    if (c.type !== 'host-local') return
    try {
      fs.mkdirSync(c.dataDir, { recursive: true })
      fs.accessSync(c.dataDir, fs.constants.W_OK)
    } catch (err) {
      throw new NsdnError(
        'E_UNAVAILABLE',
        `dataDir ${c.dataDir} is not writable: ${errorMessage(err)}`,
      )
    }
  },
  async gc(inv) {
    await ipamGc(conf(inv), String(inv.conf.name), validAttachments(inv))
  },
}
