/**
 * Every root test file starts with `sandboxThisFile()`: the file re-runs itself in a private
 * network, mount and PID namespace (src/sandbox.ts), so nothing it creates reaches the host and
 * whatever it leaves dies with it. node --test's child protocol passes through on stdout.
 * Without root the file's tests cannot run: the file is reported as one skipped test, with the
 * reason, so that a run without root never counts them as passed.
 */
import { spawnSync } from 'node:child_process'
import path from 'node:path'
import { inSandbox, runSandboxed } from '../../src/sandbox.js'

export const NEEDS_ROOT = 'root tests need root (CAP_SYS_ADMIN for their sandbox): run as root'

export function sandboxThisFile(): void {
  if (inSandbox()) return
  if (process.getuid?.() !== 0) process.exit(reportSkipped(NEEDS_ROOT))
  process.exit(runSandboxed([process.execPath, ...process.execArgv, ...process.argv.slice(1)]))
}

/**
 * Report this file as one skipped test. A separate node process does it: here, the file's own
 * tests are about to be declared, and they must not run.
 */
function reportSkipped(reason: string): number {
  const name = path.basename(process.argv[1] ?? 'root test file', '.js')
  const script = `require('node:test').test(${JSON.stringify(name)}, { skip: ${JSON.stringify(reason)} }, () => {})`
  const r = spawnSync(process.execPath, [...process.execArgv, '-e', script], { stdio: 'inherit' })
  return r.status ?? 1
}
