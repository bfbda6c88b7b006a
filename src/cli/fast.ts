/**
 * Commands run before (and without) the full CLI: `nsdn --version` and `nsdn exec`, whose
 * latency is the point. They load neither commander nor pino, koffi or the netlink package;
 * anything they do not recognise (help, unknown flags) goes to the full CLI.
 * @module
 */
import { parseExecArgv, runExec } from './commands/exec.js'
import { VERSION } from './version.js'

/** Handle argv if it is a fast command; false means: run the full CLI. */
export function fastPath(argv: readonly string[]): boolean {
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
    process.stdout.write(VERSION + '\n')
    return true
  }
  if (argv[0] !== 'exec') return false
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
