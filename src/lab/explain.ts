/**
 * `nsdn lab explain`: the whole lab as the shell script a learner would type, each command
 * after a comment saying why, in an order that works (the plan's). It assumes a fresh machine
 * (it starts the private Open vSwitch when the lab has OVS switches) and runs as printed.
 * @module
 */
import { explainLines, formatOp } from '../teach/commands.js'
import { planFor } from './deploy.js'
import { vsctlGlobals } from './plan.js'
import type { Lab } from './resolve.js'

export async function explainScript(lab: Lab): Promise<string> {
  const steps = await planFor(lab, true)
  const out = [
    '#!/bin/bash',
    `# Lab "${lab.name}" (${lab.file}), built by hand: paste into a root shell.`,
    `# nsdn lab deploy does the same over netlink; "nsdn lab destroy ${lab.name}" removes it.`,
    'set -e',
  ]
  for (const s of steps) out.push('', `# ${s.why}`, ...explainLines(s.op))
  const nss = lab.nodes.flatMap((n) => (n.ns && !n.container ? [n.ns] : []))
  const containers = lab.nodes.flatMap((n) => (n.container ? [n.container.name] : []))
  // the root namespace's devices: by group when the lab made them in one (the peers go along)
  const rootDevs = steps.flatMap((s) => (s.creates && 'link' in s.creates ? [s.creates] : []))
  const roots = [
    ...new Set(rootDevs.map((c) => (c.group ? `group ${c.group}` : c.peerNs ? '' : c.link))),
  ].filter(Boolean)
  const ovs = lab.switches.filter((s) => s.kind === 'ovs').map((s) => s.dev)
  out.push('', '# To remove it all again:')
  for (const b of ovs) out.push(`#   ovs-vsctl ${vsctlGlobals()[0]} del-br ${b}`)
  for (const l of roots) out.push(`#   ip link del ${l}`)
  for (const c of containers) out.push(`#   ${formatOp({ kind: 'container.rm', name: c })}`)
  for (const n of nss) out.push(`#   ip netns del ${n}`)
  for (const s of steps) {
    const c = s.creates
    if (c && 'nftTable' in c) out.push(`#   nft delete table ip ${c.nftTable}`)
    if (c && 'sysctl' in c) out.push(`#   sysctl -w ${c.sysctl}=0   # if it was 0 before`)
  }
  return out.join('\n') + '\n'
}
