/**
 * A network driver as a CNI plugin (`nsdn-bridge`, `nsdn-ovs`, `nsdn-vlan`, `nsdn-routed`):
 * the same driver object `nsdn net` runs in-process, fed from a CNI call. The drivers take the
 * keys of their reference counterparts (bridge, ptp, vlan), so a conflist only changes `type`.
 * Each attachment is also recorded under the state directory, so that GC can DEL what the
 * runtime no longer lists, with the config it was added with.
 * @module
 */
import fs from 'node:fs'
import path from 'node:path'
import type { AttachContext, NetConfBase, NetworkDriver } from '../drivers/api.js'
import { getDriver } from '../drivers/registry.js'
import { NsdnError, errorMessage } from '../errors.js'
import { type IpamConf, ipamGc } from '../ipam/index.js'
import { logger } from '../log.js'
import { Rtnl } from '../netlink/rtnl.js'
import { NetNs } from '../netns/netns.js'
import { enableIpamExec } from './ipam-exec.js'
import {
  type CniPlugin,
  type Invocation,
  type Json,
  currentCall,
  validAttachments,
} from './skel.js'

const log = logger('cni.driver')

/** Where attachments are recorded: on /run, like the namespaces they describe. */
export function stateDir(): string {
  return process.env.NSDN_CNI_STATE_DIR ?? '/run/nsdn/cni'
}

interface Record_ {
  containerId: string
  ifname: string
  netns: string | undefined
  /** The config ADD got, without prevResult. */
  conf: Json
}

const recordFile = (network: string, containerId: string, ifname: string): string =>
  path.join(stateDir(), network, `${containerId}-${ifname}.json`)

function parse(driver: NetworkDriver, conf: Json): NetConfBase {
  // The plugin type (nsdn-bridge) names the driver (bridge); the driver checks its own type.
  return driver.parseConf({ ...conf, type: driver.name }, 'config')
}

/** Open CNI_NETNS; on DEL a namespace that is gone is fine (undefined). */
function openNetns(inv: Invocation): NetNs | undefined {
  if (!inv.netns) return undefined
  if (inv.command === 'DEL' && !fs.existsSync(inv.netns)) return undefined
  return NetNs.openPath(inv.netns)
}

/** Run fn with the call's context; then close the netns and its netlink socket (a resident
 * agent would otherwise keep every container's namespace alive). */
async function withCtx<T>(inv: Invocation, fn: (ctx: AttachContext) => Promise<T>): Promise<T> {
  const netns = openNetns(inv)
  try {
    return await fn({
      containerId: inv.containerId,
      netns,
      netnsPath: inv.netns ?? '',
      ifname: inv.ifname,
      ...(inv.prevResult ? { prevResult: inv.prevResult } : {}),
    })
  } finally {
    if (netns && netns.id !== NetNs.current().id) {
      Rtnl.for(netns).close()
      netns.close()
    }
  }
}

function withoutPrev(conf: Json): Json {
  const { prevResult: _p, ...rest } = conf
  return rest
}

export function driverPlugin(driverName: string): CniPlugin {
  enableIpamExec()
  const driver = (): NetworkDriver => getDriver(driverName)
  const del = async (inv: Invocation): Promise<void> => {
    const d = driver()
    const conf = parse(d, inv.conf)
    await withCtx(inv, (ctx) => d.del(conf, ctx))
    fs.rmSync(recordFile(conf.name, inv.containerId, inv.ifname), { force: true })
  }
  return {
    async add(inv) {
      const d = driver()
      const conf = parse(d, inv.conf)
      if (!inv.netns) throw new NsdnError('E_CNI_ENV', 'CNI_NETNS is not set')
      const result = await withCtx(inv, (ctx) => d.add(conf, ctx))
      const rec: Record_ = {
        containerId: inv.containerId,
        ifname: inv.ifname,
        netns: inv.netns,
        conf: withoutPrev(inv.conf),
      }
      const file = recordFile(conf.name, inv.containerId, inv.ifname)
      try {
        fs.mkdirSync(path.dirname(file), { recursive: true })
        fs.writeFileSync(file, JSON.stringify(rec))
      } catch (err) {
        // The attachment works; only GC would miss it. Undo rather than leave it unrecorded.
        await withCtx(inv, (ctx) => d.del(conf, ctx)).catch(() => undefined)
        throw new NsdnError('E_IO', `cannot record the attachment in ${file}: ${errorMessage(err)}`)
      }
      return result
    },
    del,
    async check(inv) {
      const d = driver()
      const conf = parse(d, inv.conf)
      if (!inv.prevResult)
        throw new NsdnError('E_CONFIG', 'CHECK needs prevResult (the Result of ADD)', {
          hint: 'a runtime passes the cached Result of ADD as prevResult',
        })
      await withCtx(inv, (ctx) => d.check(conf, ctx))
    },
    async status(inv) {
      parse(driver(), inv.conf)
    },
    async gc(inv) {
      const conf = parse(driver(), inv.conf)
      const valid = validAttachments(inv)
      const dir = path.join(stateDir(), conf.name)
      let names: string[] = []
      try {
        names = fs.readdirSync(dir)
      } catch {
        names = []
      }
      for (const n of names) {
        let rec: Record_
        try {
          rec = JSON.parse(fs.readFileSync(path.join(dir, n), 'utf8')) as Record_
        } catch {
          continue
        }
        if (valid.has(`${rec.containerId}/${rec.ifname}`)) continue
        log.info({ containerId: rec.containerId, ifname: rec.ifname }, 'gc: del')
        // The stale attachment gets a DEL with the config it was added with.
        const stdin = Buffer.from(JSON.stringify(rec.conf))
        const one: Invocation = {
          ...inv,
          command: 'DEL',
          containerId: rec.containerId,
          ifname: rec.ifname,
          netns: rec.netns,
          conf: rec.conf,
          stdin,
          prevResult: undefined,
        }
        await currentCall.run(one, () => del(one))
      }
      // Leases no record names (an ADD killed half-way) go too.
      const ipam = (conf as { ipam?: IpamConf }).ipam
      if (ipam) await ipamGc(ipam, conf.name, valid)
    },
  }
}
