/**
 * PID 1 of a sandbox: mounts a /proc that shows the sandbox's own PID namespace (only a
 * process inside it can), then runs the command and exits with its status. Tools that look
 * up their own /proc/PID (Go CNI plugins, ps) then find themselves.
 * Usage (by src/sandbox.ts): node sandbox-init.js CMD [ARGS...]
 * @module
 */
import { spawnSync } from 'node:child_process'
import { constants } from 'node:os'
import { MS, mount } from './ffi/libc.js'

const [cmd, ...args] = process.argv.slice(2)
mount('proc', '/proc', 'proc', MS.NOSUID | MS.NODEV | MS.NOEXEC)
const r = spawnSync(cmd ?? 'true', args, { stdio: 'inherit' })
if (r.error) {
  process.stderr.write(`nsdn sandbox: cannot run "${cmd}": ${r.error.message}\n`)
  process.exit(127)
}
process.exit(r.status ?? 128 + (r.signal ? (constants.signals[r.signal] ?? 0) : 0))
