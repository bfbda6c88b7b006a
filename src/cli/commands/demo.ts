/**
 * `nsdn demo`: the LXC book's OVS VLAN walkthrough with nsdn commands, in a private sandbox.
 * @module
 */
import type { Command } from 'commander'
import path from 'node:path'
import { runDemo } from '../../demo/ovs-vlan.js'
import { inSandbox, runSandboxed } from '../../sandbox.js'
import { examples, needsRoot } from '../context.js'

export function register(program: Command): void {
  const demo = program
    .command('demo')
    .description(
      'the main job: the LXC book OVS walkthrough as a lab (scenarios/02-ovs-vlan.yaml), ' +
        'deployed, verified, drawn and destroyed in a private sandbox; prints the verdict',
    )
    .action(async () => {
      process.exitCode = inSandbox()
        ? await runDemo()
        : runSandboxed([process.execPath, path.resolve(__dirname, '../main.js'), 'demo'])
    })
  examples(needsRoot(demo), 'sudo nsdn demo', 'npm run demo')
}
