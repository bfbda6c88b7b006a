/**
 * `nsdn sandbox -- CMD`: run a command in a private host (fresh network, mount and PID
 * namespaces) where it can create namespaces and devices that vanish when it exits.
 * @module
 */
import type { Command } from 'commander'
import { runOpSync } from '../../op.js'
import { runSandboxed } from '../../sandbox.js'
import { examples } from '../context.js'

export function register(program: Command): void {
  const sandbox = program
    .command('sandbox')
    .description('run a command in a fresh network, mount and PID namespace; exits with its status')
    .argument('<command...>', 'the command and its arguments, after "--"')
    .action((argv: string[]) => {
      process.exitCode = runOpSync({ kind: 'sandbox', argv }, () => runSandboxed(argv), 0)
    })
  examples(
    sandbox,
    'sudo nsdn sandbox -- bash',
    'sudo nsdn sandbox -- nsdn --explain link add br0 type bridge',
  )
}
