/**
 * IPAM for the network drivers (in-process) and the CNI plugins: parse an `ipam` config object
 * and run ADD, DEL and CHECK for one container interface. `host-local` keeps leases under
 * `<dataDir>/<network>/` in the reference plugin's layout; `static` hands out what it lists.
 * @module
 */
import { ConfigError, NsdnError } from '../errors.js'
import { objectAt } from './fields.js'
import { HostLocal, type HostLocalConf, parseHostLocalConf } from './host-local.js'
import type { IpamResult } from './result.js'
import { FileStore } from './store-file.js'
import { type StaticConf, parseStaticConf, staticResult } from './static.js'

export type { IpamResult, IpConfig, Route, Dns } from './result.js'
export { DEFAULT_DATA_DIR, type HostLocalConf } from './host-local.js'
export type { StaticConf } from './static.js'

/** IPAM by another program: the CNI IPAM plugin `plugin` (an executable path). */
export interface DelegatedIpamConf {
  type: 'delegated'
  plugin: string
}

export type IpamConf = HostLocalConf | StaticConf | DelegatedIpamConf

/**
 * Runs CNI IPAM plugins for the drivers, as a runtime would (set by the CNI front, which knows
 * CNI_PATH and the call's environment; the layer below fronts cannot exec plugins itself).
 */
export interface IpamDelegate {
  /** The executable for an IPAM type, when the current call may delegate it; else undefined. */
  find(type: string): string | undefined
  add(conf: DelegatedIpamConf, args: IpamArgs): Promise<IpamResult>
  del(conf: DelegatedIpamConf, args: IpamArgs): Promise<void>
  check(conf: DelegatedIpamConf, args: IpamArgs): Promise<IpamResult>
}

let delegate: IpamDelegate | undefined

export function setIpamDelegate(d: IpamDelegate | undefined): void {
  delegate = d
}

/** nsdn's own IPAM type: host-local or static, by `mode` or by the keys given. */
export const NSDN_IPAM = 'nsdn-ipam'

function parseNsdnIpam(o: Record<string, unknown>, where: string): HostLocalConf | StaticConf {
  const mode = o.mode ?? (o.addresses !== undefined ? 'static' : 'host-local')
  if (mode === 'host-local') return parseHostLocalConf(o, where)
  if (mode === 'static') return parseStaticConf(o, where)
  throw new ConfigError(`unknown mode ${JSON.stringify(mode)}`, `${where}.mode`, {
    hint: '"host-local" (leases from ranges) or "static" (the addresses listed)',
  })
}

/**
 * Parse the `ipam` object of a network config; `where` prefixes the field paths of errors.
 * `nsdn-ipam` runs in-process; another type goes to the delegate when it finds the plugin (a
 * CNI call), else `host-local` and `static` run in-process, in the reference plugins' layout.
 */
export function parseIpamConf(json: unknown, where = 'ipam'): IpamConf {
  const o = objectAt(json, where)
  if (o.type === NSDN_IPAM) return parseNsdnIpam(o, where)
  const plugin = typeof o.type === 'string' ? delegate?.find(o.type) : undefined
  if (plugin) return { type: 'delegated', plugin }
  if (o.type === 'host-local') return parseHostLocalConf(o, where)
  if (o.type === 'static') return parseStaticConf(o, where)
  const what = o.type === undefined ? 'is missing' : `unknown IPAM type ${JSON.stringify(o.type)}`
  throw new ConfigError(what, `${where}.type`, {
    hint: `use "type": "host-local", "static" or "${NSDN_IPAM}"`,
  })
}

export interface IpamArgs {
  /** The network's name: host-local's leases live in `<dataDir>/<network>/`. */
  network: string
  containerId: string
  ifname: string
  /** Addresses to hand out instead of the next free ones (host-local only). */
  requestedIps?: readonly string[]
}

function hostLocal(conf: HostLocalConf, args: IpamArgs): HostLocal {
  return new HostLocal(conf, FileStore.open(conf.dataDir, args.network))
}

/** ADD: reserve (host-local) or hand out (static) the addresses of one container interface. */
export async function ipamAdd(conf: IpamConf, args: IpamArgs): Promise<IpamResult> {
  if (conf.type === 'delegated') return delegated(conf).add(conf, args)
  if (conf.type === 'host-local')
    return hostLocal(conf, args).allocate(
      args.containerId,
      args.ifname,
      args.requestedIps ? { requestedIps: args.requestedIps } : {},
    )
  if (args.requestedIps?.length)
    throw new ConfigError('static IPAM takes no requested addresses', 'requestedIps', {
      hint: 'list the addresses in ipam.addresses instead',
    })
  return staticResult(conf)
}

/** DEL: release what ADD reserved. Idempotent: nothing to release is success. */
export async function ipamDel(conf: IpamConf, args: IpamArgs): Promise<void> {
  if (conf.type === 'delegated') return delegated(conf).del(conf, args)
  if (conf.type === 'host-local') await hostLocal(conf, args).release(args.containerId, args.ifname)
}

/**
 * Undo an ADD being rolled back: release, and remove the network's lease directory when no
 * lease is left in it, so a failed first attach leaves no empty directory behind.
 */
export async function ipamUndo(conf: IpamConf, args: IpamArgs): Promise<void> {
  if (conf.type !== 'host-local') return
  const store = FileStore.open(conf.dataDir, args.network)
  await new HostLocal(conf, store).release(args.containerId, args.ifname)
  await store.removeIfUnused()
}

/** GC: release the leases of interfaces not in `valid` ("containerId/ifname"). */
export async function ipamGc(
  conf: IpamConf,
  network: string,
  valid: ReadonlySet<string>,
): Promise<string[]> {
  if (conf.type !== 'host-local') return []
  return new HostLocal(conf, FileStore.open(conf.dataDir, network)).gc(valid)
}

/** CHECK: the addresses the interface holds; E_NOT_FOUND when ADD has not reserved them. */
export async function ipamCheck(conf: IpamConf, args: IpamArgs): Promise<IpamResult> {
  if (conf.type === 'delegated') return delegated(conf).check(conf, args)
  if (conf.type === 'host-local') return hostLocal(conf, args).get(args.containerId, args.ifname)
  return staticResult(conf)
}

function delegated(conf: DelegatedIpamConf): IpamDelegate {
  if (!delegate) throw new NsdnError('E_INTERNAL', `IPAM plugin ${conf.plugin} outside a CNI call`)
  return delegate
}
