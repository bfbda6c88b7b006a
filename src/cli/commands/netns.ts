/**
 * `nsdn netns add|del|list|exec`: named network namespaces, shared with `ip netns`.
 * @module
 */
import type { Command } from 'commander'
import { NsdnError } from '../../errors.js'
import { NetNs, spawnInNetns } from '../../netns/netns.js'
import { runOp } from '../../op.js'
import { validNetnsName } from '../../validate.js'
import { examples, globals, needsRoot } from '../context.js'
import { printJson } from '../output.js'
import { constants } from 'node:os'

/** Signals passed on to the command rather than ending nsdn before it. */
const FORWARDED = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const

/** Run argv inside ns with our stdio; resolve with its exit status (128 + signal if killed). */
function runIn(ns: NetNs, argv: readonly string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawnInNetns(ns, argv, { stdio: 'inherit' })
    const forward = (sig: NodeJS.Signals): void => void child.kill(sig)
    for (const s of FORWARDED) process.on(s, forward)
    const done = (): void => {
      for (const s of FORWARDED) process.off(s, forward)
    }
    child.on('error', (err) => {
      done()
      reject(
        new NsdnError('E_EXEC', `netns exec: cannot run "${argv[0]}": ${err.message}`, {
          cause: err,
          hint: 'give the program by its path, or check that it is installed',
        }),
      )
    })
    child.on('exit', (code, signal) => {
      done()
      resolve(code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0))
    })
  })
}

export function register(program: Command): void {
  const netns = program
    .command('netns')
    .description('named network namespaces (the ones "ip netns" shows)')
  examples(netns, 'nsdn netns add h1', 'nsdn netns list', 'nsdn netns exec h1 -- ip addr')

  const add = netns
    .command('add')
    .description('create a named network namespace')
    .argument('<name>', 'namespace name (a plain file name under /run/netns)')
    .action((name: string) => {
      NetNs.create(validNetnsName(name, 'netns add NAME')).close()
    })
  examples(needsRoot(add), 'nsdn netns add h1', 'nsdn --explain netns add h2')

  const del = netns
    .command('del')
    .alias('delete')
    .description('delete a named network namespace (and the devices in it)')
    .argument('<name>', 'namespace name')
    .action((name: string) => {
      NetNs.delete(validNetnsName(name, 'netns del NAME'))
    })
  examples(needsRoot(del), 'nsdn netns del h1')

  const list = netns
    .command('list')
    .alias('show')
    .description('list the named network namespaces')
    .action((_o: unknown, cmd: Command) => {
      const names = NetNs.list()
      if (globals(cmd).json) printJson(names)
      else if (names.length) process.stdout.write(names.join('\n') + '\n')
    })
  examples(list, 'nsdn netns list', 'nsdn --json netns list')

  const exec = netns
    .command('exec')
    .description('run a command inside a named network namespace; exits with its status')
    .argument('<name>', 'namespace name')
    .argument('<command...>', 'the command and its arguments, after "--"')
    .action(async (name: string, argv: string[]) => {
      const ns = NetNs.open(validNetnsName(name, 'netns exec NAME'))
      try {
        const op = { kind: 'netns.exec', name, argv } as const
        process.exitCode = await runOp(op, () => runIn(ns, argv), 0)
      } finally {
        ns.close()
      }
    })
  examples(
    needsRoot(exec),
    'nsdn netns exec h1 -- ip -br addr',
    'nsdn netns exec h1 -- ping -c1 10.0.0.2',
  )
}
