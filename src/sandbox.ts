/**
 * A private host to experiment in: a fresh network, mount and PID namespace, with its own
 * /run (so /run/netns is private), its own /var/lib/cni (IPAM leases) and a sysfs that shows the new namespace's devices.
 * Everything created inside vanishes when the command exits; any daemon it left behind is
 * killed with it (sandbox-init.ts is PID 1 of the new PID namespace and mounts its /proc).
 * @module
 */
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { constants } from 'node:os'
import { NsdnError } from './errors.js'
import { CLONE, MS, mount, setns, unshare } from './ffi/libc.js'
import { mkdirp } from './files.js'
import { NetNs } from './netns/netns.js'

export const SANDBOX_ENV = 'NSDN_SANDBOX'

/**
 * Directories of state outside /run that get a tmpfs of their own in the sandbox: the leases
 * of host-local IPAM (theirs and the reference plugin's default), which would otherwise land
 * on the host's disk, outlive the sandbox and collide with the host's real leases.
 */
export const SANDBOX_STATE_DIRS = ['/var/lib/cni']

/**
 * Move the main thread into new namespaces and prepare the mounts. Spawned children inherit
 * them; the PID namespace applies to children only.
 */
function enterSandbox(): void {
  if (process.getuid?.() !== 0)
    throw new NsdnError('E_PERM', 'the sandbox needs root', { hint: 'run it as root (sudo)' })
  // A multithreaded process may only unshare its mount namespace once the thread has its own
  // fs_struct.
  unshare(CLONE.FS)
  unshare(CLONE.NEWNS | CLONE.NEWNET | CLONE.NEWPID)
  mount('none', '/', null, MS.REC | MS.PRIVATE)
  mount('nsdn-run', '/run', 'tmpfs', MS.NOSUID | MS.NODEV, 'mode=755')
  fs.mkdirSync('/run/netns')
  fs.mkdirSync('/run/lock')
  // State that lives on disk (IPAM leases) is the sandbox's own too, as /run is.
  for (const dir of SANDBOX_STATE_DIRS) {
    mkdirp(dir)
    mount('nsdn-state', dir, 'tmpfs', MS.NOSUID | MS.NODEV, 'mode=755')
  }
  // the new sysfs would hide the cgroup mounts under /sys/fs/cgroup: carry them over
  const cg = fs.existsSync('/sys/fs/cgroup') ? '/run/.nsdn-cgroup' : undefined
  if (cg) {
    fs.mkdirSync(cg)
    mount('/sys/fs/cgroup', cg, null, MS.BIND | MS.REC)
  }
  mount('nsdn-sys', '/sys', 'sysfs', MS.NOSUID | MS.NODEV | MS.NOEXEC)
  if (cg) {
    mount(cg, '/sys/fs/cgroup', null, MS.MOVE)
    fs.rmdirSync(cg)
  }
  NetNs.reset()
}

/**
 * Run argv in a fresh sandbox and return its exit status. Equivalent:
 * `unshare --net --mount --pid --fork --mount-proc --propagation private` plus a tmpfs on /run.
 */
export function runSandboxed(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): number {
  const [cmd, ...args] = argv
  if (!cmd)
    throw new NsdnError('E_USAGE', 'sandbox: no command given', {
      hint: 'nsdn sandbox -- CMD [ARGS...]',
    })
  const pidFd = fs.openSync('/proc/thread-self/ns/pid', 'r')
  enterSandbox()
  let r
  try {
    // The first process of the new PID namespace mounts its /proc, then runs the command.
    const init = path.join(__dirname, 'sandbox-init.js')
    r = spawnSync(process.execPath, [init, cmd, ...args], {
      stdio: 'inherit',
      env: { ...env, [SANDBOX_ENV]: '1' },
    })
  } finally {
    // Node cannot start threads while its PID namespace for children differs.
    setns(pidFd, CLONE.NEWPID)
    fs.closeSync(pidFd)
  }
  if (r.error) throw new NsdnError('E_EXEC', `sandbox: cannot run "${cmd}": ${r.error.message}`)
  return r.status ?? 128 + (r.signal ? signalNumber(r.signal) : 0)
}

function signalNumber(sig: NodeJS.Signals): number {
  return constants.signals[sig] ?? 0
}

export function inSandbox(): boolean {
  return process.env[SANDBOX_ENV] === '1'
}
