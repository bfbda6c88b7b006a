/**
 * The checks that need the running kernel, made before anything is created: features a lab
 * asks for (bridge VLAN filtering, netem), and br_netfilter, which would hand bridged frames
 * to a firewall that drops them. Reads and probes only (probes run in throwaway namespaces).
 * @module
 */
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import { ConfigError, KernelFeatureError } from '../errors.js'
import { probeBridgeVlanFiltering, probeNetem } from '../netlink/features.js'
import { linkFeatureError } from '../netlink/link.js'
import type { Lab } from './resolve.js'

/** A forward-hook chain whose policy is drop, in `nft -j list ruleset` (iptables-nft too). */
function forwardDrops(): string | undefined {
  const r = spawnSync('nft', ['-j', 'list', 'chains'], { encoding: 'utf8' })
  if (r.status !== 0) return undefined
  const chains = (JSON.parse(r.stdout || '{"nftables":[]}') as { nftables: { chain?: Record<string, unknown> }[] })
    .nftables.flatMap((x) => (x.chain ? [x.chain] : []))
  const c = chains.find((c) => c.hook === 'forward' && c.policy === 'drop')
  return c ? `${String(c.family)} ${String(c.table)} ${String(c.name)}` : undefined
}

export async function preflight(lab: Lab): Promise<void> {
  const [bv] = lab.needs.bridgeVlans
  if (bv !== undefined && !(await probeBridgeVlanFiltering())) {
    const e = linkFeatureError('bridge-vlan-filtering')
    throw new KernelFeatureError(e.feature, e.kconfig, `${bv}: use kind: ovs for this switch (OVS port tags)`)
  }
  const [ne] = lab.needs.netem
  if (ne !== undefined && !(await probeNetem()))
    throw new KernelFeatureError(
      'the network emulator qdisc (netem), which delay and loss need',
      'CONFIG_NET_SCH_NETEM',
      `${ne}: remove delay/loss, or limit the rate instead (rate: 10mbit, a tbf qdisc)`,
    )
  if (lab.switches.some((s) => s.kind === 'bridge')) {
    let on = false
    try {
      on = fs.readFileSync('/proc/sys/net/bridge/bridge-nf-call-iptables', 'utf8').trim() === '1'
    } catch {
      // br_netfilter not loaded: bridged frames never meet the firewall
    }
    const chain = on ? forwardDrops() : undefined
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
