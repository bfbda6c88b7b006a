/**
 * Commands run before (and without) the full CLI: `nsdn --version` and `nsdn exec`, whose
 * latency is the point. They load neither commander nor pino, koffi or the netlink package;
 * anything they do not recognise (help, unknown flags) goes to the full CLI.
 * @module
 */
import type * as Exec from './commands/exec.js'

/** Handle argv if it is a fast command; false means: run the full CLI. */
export function fastPath(argv: readonly string[]): boolean {
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
    process.stdout.write((require('./version.js') as typeof import('./version.js')).VERSION + '\n')
    return true
  }
  if (argv[0] !== 'exec') return false
  const { parseExecArgv, runExec } = require('./commands/exec.js') as typeof Exec
  const p = parseExecArgv(argv.slice(1))
  if (!p) return false
  Promise.resolve()
    .then(() => runExec(p.name, p.argv, p.opts))
    .then(
      (code) => {
        process.exitCode = code
      },
      async (err: unknown) => (await import('./errors.js')).handleError(err),
    )
  return true
}
