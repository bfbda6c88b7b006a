/**
 * Attach a named namespace to a network with a driver, in-process: what `nsdn net` and the lab
 * engine do. The result is kept (like libcni's result cache) so `check` can compare the kernel
 * with what add reported and `detach` can hand the driver what it created.
 * @module
 */
import fs from 'node:fs'
import path from 'node:path'
import { ConfigError, NsdnError, errorMessage, isCode } from '../errors.js'
import { io, mkdirp } from '../files.js'
import { logger } from '../log.js'
import { NetNs, netnsDir } from '../netns/netns.js'
import { validContainerId, validIfName, validNetnsName } from '../validate.js'
import type { AttachContext, CniResult, NetConfBase } from './api.js'
import { getDriver } from './registry.js'
import { canonicalCidr } from './check.js'
import { type IpamConf, ipamUndo } from '../ipam/index.js'
import { linkSet, tryLinkByName } from '../netlink/link.js'
import { addrList } from '../netlink/addr.js'
import { Rtnl } from '../netlink/rtnl.js'
import { failpoint } from './rollback.js'

/** The longest file name (NAME_MAX of Linux file systems). */
const NAME_MAX = 255

const log = logger('attach')

/** Where results are kept: on /run, since the namespaces they describe do not outlive a boot. */
export function resultDir(): string {
  return process.env.NSDN_RESULT_DIR ?? '/run/nsdn/results'
}

export interface AttachRequest {
  driver: string
  /** The network config as parsed JSON (`type` defaults to the driver name). */
  conf: unknown
  netns: string
  ifname?: string
  /** Defaults to the netns name. */
  containerId?: string
}

function prepare(req: AttachRequest): {
  driver: ReturnType<typeof getDriver>
  conf: NetConfBase
  ctx: Omit<AttachContext, 'netns'>
  file: string
} {
  const driver = getDriver(req.driver)
  const raw = req.conf
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new ConfigError('the network config must be a JSON object', 'conf', {
      hint: `e.g. {"name":"net1","type":"${req.driver}", ...}`,
    })
  const conf = driver.parseConf({ type: req.driver, ...raw }, 'conf')
  const netns = validNetnsName(req.netns, 'NETNS')
  const ifname = validIfName(req.ifname ?? 'eth0', '--ifname')
  const containerId = validContainerId(req.containerId ?? netns, '--container-id')
  const base = `${containerId}-${ifname}.json`
  for (const n of [conf.name, base])
    if (Buffer.byteLength(n) > NAME_MAX)
      throw new ConfigError(`the file name ${n} is over ${NAME_MAX} bytes`, 'conf.name', {
        hint: 'shorten the network name',
      })
  const file = path.join(resultDir(), conf.name, base)
  return {
    driver,
    conf,
    ctx: { containerId, netnsPath: path.join(netnsDir(), netns), ifname },
    file,
  }
}

/** The `ipam` section of a veth driver's config, if it has one. */
const ipamOf = (conf: NetConfBase): IpamConf | undefined => (conf as { ipam?: IpamConf }).ipam

/**
 * Refuse static addresses that an attachment of the same network holds already (its recorded
 * result) or that an interface of this host has: two containers with one address break both.
 */
async function refuseTakenStatic(conf: NetConfBase, file: string): Promise<void> {
  const ipam = ipamOf(conf)
  if (ipam?.type !== 'static') return
  const bare = (cidr: string): string => canonicalCidr(cidr.split('/')[0] ?? '')
  const holders = new Map<string, string>()
  for (const a of await addrList(Rtnl.for())) holders.set(bare(a.cidr), 'this host')
  const dir = path.dirname(file)
  const names = fs.existsSync(dir) ? io(`ls ${dir}`, () => fs.readdirSync(dir)) : []
  for (const name of names.filter((n) => n.endsWith('.json'))) {
    const other = path.join(dir, name)
    if (other === file) continue
    for (const ip of readResult(other)?.ips ?? [])
      holders.set(
        bare(ip.address),
        `attachment ${name.replace(/\.json$/, '')} of network "${conf.name}"`,
      )
  }
  ipam.addresses.forEach((a, i) => {
    const holder = holders.get(bare(a.address))
    if (holder)
      throw new NsdnError(
        'E_EXISTS',
        `conf.ipam.addresses[${i}]: ${a.address} is taken by ${holder}`,
        {
          hint: 'give this container another address, or detach the one that holds it',
        },
      )
  })
}

/** Equivalent of CNI ADD on a named namespace. */
export async function attach(req: AttachRequest): Promise<CniResult> {
  const { driver, conf, ctx, file } = prepare(req)
  await refuseTakenStatic(conf, file)
  const netns = NetNs.open(req.netns)
  try {
    const h = Rtnl.for(netns)
    const loWasUp = (await tryLinkByName(h, 'lo'))?.up ?? true
    const result = await driver.add(conf, { ...ctx, netns })
    try {
      failpoint('result')
      mkdirp(path.dirname(file))
      io(`write ${file}`, () => fs.writeFileSync(file, JSON.stringify(result)))
    } catch (err) {
      // Without its result, detach could not be told what add made: take it all back, to the
      // state before (del alone leaves lo up and the lease directory).
      const ipam = ipamOf(conf)
      const undo = async (): Promise<void> => {
        await driver.del(conf, { ...ctx, netns, prevResult: result })
        if (ipam) await ipamUndo(ipam, { network: conf.name, ...ctx })
        if (!loWasUp) await linkSet(h, 'lo', { up: false })
      }
      await undo().catch((e: unknown) => {
        log.warn({ err: errorMessage(e) }, 'rollback of the attachment failed')
      })
      throw err
    }
    return result
  } finally {
    netns.close()
  }
}

/** Equivalent of CNI DEL: tolerant of anything already gone, the namespace included. */
export async function detach(req: AttachRequest): Promise<void> {
  const { driver, conf, ctx, file } = prepare(req)
  const netns = NetNs.exists(req.netns) ? NetNs.open(req.netns) : undefined
  try {
    const prev = readResult(file)
    try {
      await driver.del(conf, { ...ctx, netns, ...(prev ? { prevResult: prev } : {}) })
    } catch (err) {
      // A service that is down (Open vSwitch): the driver freed the rest, and what is left it
      // finds again by name, without the result.
      if (isCode(err, 'E_UNAVAILABLE')) removeResult(file)
      throw err
    }
    removeResult(file)
  } finally {
    netns?.close()
  }
}

/** Equivalent of CNI CHECK against the result recorded by attach. */
export async function check(req: AttachRequest): Promise<void> {
  const { driver, conf, ctx, file } = prepare(req)
  const prev = readResult(file)
  if (!prev)
    throw new NsdnError('E_NOT_FOUND', `no recorded attachment of ${req.netns} to "${conf.name}"`, {
      hint: `attach it first: nsdn net attach ${req.netns} --driver ${req.driver} --conf ...`,
    })
  const netns = NetNs.open(req.netns)
  try {
    await driver.check(conf, { ...ctx, netns, prevResult: prev })
  } finally {
    netns.close()
  }
}

/** Remove a result, and its network's directory with its last one. */
function removeResult(file: string): void {
  fs.rmSync(file, { force: true })
  try {
    fs.rmdirSync(path.dirname(file))
  } catch {
    // other attachments' results are in it, or it is gone
  }
}

function readResult(file: string): CniResult | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as CniResult
  } catch {
    return undefined
  }
}
