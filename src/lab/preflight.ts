/**
 * The checks that need the running kernel, made before anything is created: the images of
 * container nodes, features a lab asks for (bridge VLAN filtering, netem), and br_netfilter, which would hand bridged frames
 * to a firewall that drops them. Reads and probes only (probes run in throwaway namespaces).
 * @module
 */
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import { ConfigError, KernelFeatureError } from '../errors.js'
import { probeBridgeVlanFiltering, probeNetem } from '../netlink/features.js'
import { linkFeatureError } from '../netlink/link.js'
import { checkContainers } from './containers.js'
import type { Lab } from './resolve.js'

let firewall: Promise<string | undefined> | undefined

/** Whether br_netfilter hands bridged IPv4 frames to the firewall here. */
function brNetfilterOn(): boolean {
  try {
    return fs.readFileSync('/proc/sys/net/bridge/bridge-nf-call-iptables', 'utf8').trim() === '1'
  } catch {
    return false // br_netfilter not loaded: bridged frames never meet the firewall
  }
}

/**
 * A forward-hook chain whose policy is drop, from `nft -j list chains` (iptables-nft rules show
 * there too). Started early (`readFirewallSoon`), so nft runs while the lab file is parsed.
 */
export function readFirewallSoon(): Promise<string | undefined> {
  firewall ??= !brNetfilterOn()
    ? Promise.resolve(undefined)
    : new Promise((resolve) => {
        execFile('nft', ['-j', 'list', 'chains'], { encoding: 'utf8' }, (err, stdout) => {
          if (err) return resolve(undefined)
          type Chain = Record<string, unknown>
          const all = (JSON.parse(stdout || '{"nftables":[]}') as { nftables: { chain?: Chain }[] })
            .nftables
          const c = all
            .flatMap((x) => (x.chain ? [x.chain] : []))
            .find((c) => c.hook === 'forward' && c.policy === 'drop')
          resolve(c ? `${String(c.family)} ${String(c.table)} ${String(c.name)}` : undefined)
        })
      })
  return firewall
}

export async function preflight(lab: Lab): Promise<void> {
  checkContainers(lab.nodes.flatMap((n) => (n.container ? [n.container] : [])))
  const [bv] = lab.needs.bridgeVlans
  if (bv !== undefined && !(await probeBridgeVlanFiltering())) {
    const e = linkFeatureError('bridge-vlan-filtering')
    throw new KernelFeatureError(
      e.feature,
      e.kconfig,
      `${bv}: use kind: ovs for this switch (OVS port tags)`,
    )
  }
  const [ne] = lab.needs.netem
  if (ne !== undefined && !(await probeNetem()))
    throw new KernelFeatureError(
      'the network emulator qdisc (netem), which delay and loss need',
      'CONFIG_NET_SCH_NETEM',
      `${ne}: remove delay/loss, or limit the rate instead (rate: 10mbit, a tbf qdisc)`,
    )
  if (lab.switches.some((s) => s.kind === 'bridge')) {
    const chain = await readFirewallSoon()
    if (chain)
      throw new ConfigError(
        `br_netfilter passes bridged frames to the firewall, and its forward chain (${chain}) ` +
          "drops them: the lab's Linux bridges would not forward",
        lab.file,
        {
          hint:
            'sysctl -w net.bridge.bridge-nf-call-iptables=0 (or accept the lab bridges in that ' +
            'chain), or use kind: ovs switches',
        },
      )
  }
}
