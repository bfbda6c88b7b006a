/**
 * The drivers' `ipam` by exec, as the reference plugins do it: inside a CNI call, an IPAM type
 * found in CNI_PATH (the reference host-local, static, dhcp, or any other) is run as a plugin
 * with the call's environment and the call's stdin unchanged (libcni's DelegateAdd).
 * `nsdn-ipam` stays in-process (src/ipam).
 * @module
 */
import { NsdnError, errorMessage } from '../errors.js'
import { type IpamDelegate, type IpamResult, NSDN_IPAM, setIpamDelegate } from '../ipam/index.js'
import { type PluginRun, execPlugin, findPlugin } from './exec.js'
import { type Invocation, currentCall } from './skel.js'
import type { CniCommand } from './spec.js'
import { readResult } from './spec.js'

function call(): Invocation {
  const inv = currentCall.getStore()
  if (!inv) throw new NsdnError('E_INTERNAL', 'delegated IPAM outside a CNI call')
  return inv
}

function run(command: CniCommand, inv: Invocation): PluginRun {
  return {
    command,
    containerId: inv.containerId,
    ...(inv.netns !== undefined ? { netns: inv.netns } : {}),
    ifname: inv.ifname,
    ...(inv.env.CNI_ARGS !== undefined ? { args: inv.env.CNI_ARGS } : {}),
    path: inv.path,
  }
}

const delegate: IpamDelegate = {
  find(type) {
    const inv = currentCall.getStore()
    return inv && type !== NSDN_IPAM ? findPlugin(type, inv.path) : undefined
  },
  async add(conf) {
    const inv = call()
    const r = readResult(JSON.parse(await execPlugin(conf.plugin, run('ADD', inv), inv.stdin)))
    return {
      ips: (r.ips ?? []).map(({ interface: _i, ...ip }) => ip),
      routes: (r.routes ?? []).map((rt) => ({ dst: rt.dst, ...(rt.gw ? { gw: rt.gw } : {}) })),
      dns: r.dns ?? {},
    }
  },
  async del(conf) {
    const inv = call()
    await execPlugin(conf.plugin, run('DEL', inv), inv.stdin)
  },
  async check(conf): Promise<IpamResult> {
    const inv = call()
    try {
      await execPlugin(conf.plugin, run('CHECK', inv), inv.stdin)
    } catch (err) {
      throw new NsdnError('E_NOT_FOUND', errorMessage(err), { cause: err })
    }
    return { ips: inv.prevResult?.ips ?? [], routes: [], dns: {} }
  },
}

/** Let the drivers delegate IPAM by exec while they serve CNI calls. */
export function enableIpamExec(): void {
  setIpamDelegate(delegate)
}
