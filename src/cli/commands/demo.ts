/**
 * `nsdn demo`: the LXC book's OVS VLAN walkthrough with nsdn commands, in a private sandbox.
 * @module
 */
import type { Command } from 'commander'
import path from 'node:path'
import { runDemo } from '../../demo/ovs-vlan.js'
import { runWalkthrough } from '../../demo/walkthrough.js'
import { inSandbox, runSandboxed } from '../../sandbox.js'
import { examples, needsRoot } from '../context.js'

export function register(program: Command): void {
  const demo = program
    .command('demo')
    .description(
      'the main job: the LXC book OVS walkthrough as a lab (scenarios/02-ovs-vlan.yaml), ' +
        'deployed, verified, drawn and destroyed in a private sandbox; prints the verdict',
    )
    .option(
      '--commands',
      'the same walkthrough as the book types it: one nsdn command per step (ovs add-br, ' +
        'link add, ovs add-port, set-port...), each with its --explain line, pings as checks',
    )
    .action(async (o: { commands?: boolean }) => {
      const argv = [process.execPath, path.resolve(__dirname, '../main.js'), 'demo']
      if (o.commands) argv.push('--commands')
      if (!inSandbox()) process.exitCode = runSandboxed(argv)
      else process.exitCode = o.commands ? await runWalkthrough() : await runDemo()
    })
  examples(needsRoot(demo), 'sudo nsdn demo', 'sudo nsdn demo --commands')
}
