/**
 * A container's networks: an nsdn driver attached in-process (src/drivers/attach.ts), or a CNI
 * network config list run as a CNI runtime does (src/cni/exec.ts: ADD in order at start, DEL
 * in reverse with the cached Result on stop and rm). For CNI, the container id is the
 * container's name, the netns its /run/netns/NAME, CNI_PATH the environment's (default
 * /opt/cni/bin) followed by nsdn's own plugins, and results are cached where `nsdn cni` keeps
 * them (NSDN_CNI_CACHE_DIR, default /var/lib/cni), so `nsdn cni check` sees them too.
 * @module
 */
import fs from 'node:fs'
import path from 'node:path'
import { netnsDir } from '../netns/netns.js'
import type { NetworkSpec } from './spec.js'
import { runDir } from './state.js'

/** Attach container `name`'s network `n` (its netns is named like the container). */
export function attachNetwork(name: string, n: NetworkSpec): Promise<void> {
  return change('add', name, n)
}

/** Detach it; tolerant of a namespace already gone (leases and host ends are released). */
export function detachNetwork(name: string, n: NetworkSpec): Promise<void> {
  return change('del', name, n)
}

async function change(verb: 'add' | 'del', name: string, n: NetworkSpec): Promise<void> {
  if ('driver' in n) {
    const drivers = await import('../drivers/attach.js')
    const req = { driver: n.driver, conf: n.conf, netns: name, ifname: n.ifname, containerId: name }
    await (verb === 'add' ? drivers.attach(req) : drivers.detach(req))
    return
  }
  const exec = await import('../cni/exec.js')
  const list = confList(exec, n)
  const rt = await cniRuntime(exec, name, n)
  await (verb === 'add' ? exec.addNetworkList(list, rt) : exec.delNetworkList(list, rt))
}

/** For messages: the driver, or the CNI network's file or name. */
export function networkName(n: NetworkSpec): string {
  return 'driver' in n ? n.driver : (n.conflist ?? String(n.cni.name))
}

type Exec = typeof import('../cni/exec.js')

function confList(
  exec: Exec,
  n: Extract<NetworkSpec, { cni: unknown }>,
): import('../cni/exec.js').ConfList {
  return exec.parseConfList(Buffer.from(JSON.stringify(n.cni)), n.conflist ?? 'cni')
}

async function cniRuntime(
  exec: Exec,
  name: string,
  n: NetworkSpec,
): Promise<import('../cni/exec.js').RuntimeConf> {
  return {
    containerId: name,
    netns: path.join(netnsDir(), name),
    ifname: n.ifname,
    args: [],
    capabilityArgs: n.mac ? { mac: n.mac } : {},
    path: [...exec.cniPath(), await ownPlugins()],
    cacheDir: process.env.NSDN_CNI_CACHE_DIR ?? exec.DEFAULT_CACHE_DIR,
  }
}

/** nsdn's CNI plugins (nsdn-bridge, nsdn-ipam, ...), installed once into the runtime's run dir. */
async function ownPlugins(): Promise<string> {
  const dir = path.join(runDir(), 'cni-bin')
  if (!fs.existsSync(path.join(dir, 'nsdn-bridge'))) {
    const { installPlugins } = await import('../cni/install.js')
    installPlugins(dir)
  }
  return dir
}
