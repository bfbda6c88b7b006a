/**
 * Every root test file starts with `sandboxThisFile()`: the file re-runs itself in a private
 * network, mount and PID namespace (src/sandbox.ts), so nothing it creates reaches the host and
 * whatever it leaves dies with it. node --test's child protocol passes through on stdout.
 */
import { inSandbox, runSandboxed } from '../../src/sandbox.js'

export function sandboxThisFile(): void {
  if (inSandbox()) return
  if (process.getuid?.() !== 0) {
    process.stderr.write('root tests need root: skipping this file\n')
    process.exit(0)
  }
  process.exit(runSandboxed([process.execPath, ...process.execArgv, ...process.argv.slice(1)]))
}
