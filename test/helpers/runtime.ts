/**
 * What the runtime's root tests share: a busybox root filesystem built from Debian's
 * busybox-static (installed by scripts/setup.sh), and the runtime's directories moved onto the
 * sandbox's /run (a tmpfs), so no test writes to the host's disk.
 */
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import assert from 'node:assert/strict'
import { after, before } from 'node:test'
import { procs } from './kernel.js'

/**
 * A runtime test file: the runtime's directories on the sandbox's /run, a cgroup parent of the
 * file's own, `image` (a busybox root) imported before its tests, and a clean-up after them
 * (even failed ones).
 */
export function runtimeTestFile(o: { image?: string } = {}): void {
  useTestDirs()
  if (o.image) {
    const image = o.image
    before(async () =>
      (await import('../../src/runtime/index.js')).importImage(image, busyboxRoot()),
    )
  }
  cleanUpAfterFile()
}

/**
 * A file's last check: no state, netns, mount, nsdn-init process, and no cgroup directory at all
 * under the file's parent: rm of the last container removes the parents too.
 */
export function assertNothingLeft(): void {
  assert.deepEqual(leftovers(), [])
  assert.deepEqual(leftoverCgroupParents(), [], 'no empty cgroup parent left after rm')
  const init = path.resolve(__dirname, '../../nsdn-init')
  const inits = procs((p) => p.cmdline.startsWith(init) && !/ Z /.test(p.stat))
  assert.deepEqual(inits, [], 'no nsdn-init left')
}

/** Point the runtime at the sandbox's /run and a cgroup parent of this file's own. */
export function useTestDirs(): void {
  process.env.NSDN_RUN_DIR = '/run/nsdn'
  process.env.NSDN_LIB_DIR = '/run/nsdn-lib'
  // cgroups are host-global: a parent of this file's own, removed by the file's last check
  process.env.NSDN_CGROUP_PARENT = `nsdn/test-${randomBytes(4).toString('hex')}`
}

/** A directory holding a busybox root filesystem (bin/ with every applet as a symlink). */
export function busyboxRoot(dir = '/run/busybox-root'): string {
  if (fs.existsSync(path.join(dir, 'bin/busybox'))) return dir
  for (const d of ['bin', 'sbin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'root', 'usr/bin'])
    fs.mkdirSync(path.join(dir, d), { recursive: true })
  fs.chmodSync(path.join(dir, 'tmp'), 0o1777)
  fs.copyFileSync('/bin/busybox', path.join(dir, 'bin/busybox'))
  fs.chmodSync(path.join(dir, 'bin/busybox'), 0o755)
  const applets = execFileSync('/bin/busybox', ['--list'], { encoding: 'utf8' }).split('\n')
  for (const a of applets)
    if (a && a !== 'busybox') fs.symlinkSync('busybox', path.join(dir, 'bin', a))
  fs.writeFileSync(path.join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n')
  fs.writeFileSync(path.join(dir, 'etc/group'), 'root:x:0:\n')
  fs.writeFileSync(path.join(dir, 'etc/hostname'), 'busybox\n')
  return dir
}

/** The cgroup directories of this file's parent (NSDN_CGROUP_PARENT) that still exist. */
export function leftoverCgroupParents(): string[] {
  const parent = process.env.NSDN_CGROUP_PARENT ?? ''
  const out: string[] = []
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ')
    if (!/ - cgroup2? /.test(line) || !f[4]) continue
    const d = path.join(f[4], parent)
    if (fs.existsSync(d)) out.push(d)
  }
  return [...new Set(out)] // a mount shadowed by another one is listed twice
}

/** Remove this file's cgroup parent (nsdn/ itself stays: other test files may be using it). */
export function removeCgroupParents(): void {
  for (const d of leftoverCgroupParents()) fs.rmdirSync(d)
}

/** Run argv in container `name`; its exit status and stdout. */
export async function execOut(
  name: string,
  argv: string[],
): Promise<{ code: number; out: string }> {
  const { spawnExec } = await import('../../src/runtime/exec.js')
  const child = spawnExec(name, argv, { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()))
  const code = await new Promise<number>((r) => child.on('close', (c) => r(c ?? -1)))
  return { code, out }
}

/** Everything of nsdn's that could outlive a container: state, netns names, cgroup dirs, mounts. */
export function leftovers(): string[] {
  const out: string[] = []
  const ls = (d: string): string[] => (fs.existsSync(d) ? fs.readdirSync(d) : [])
  out.push(...ls('/run/nsdn/containers').map((n) => `state ${n}`))
  out.push(...ls('/run/nsdn-lib/containers').map((n) => `data ${n}`))
  out.push(...ls('/run/netns').map((n) => `netns ${n}`))
  for (const d of leftoverCgroupParents())
    out.push(
      ...fs
        .readdirSync(d, { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .map((e) => `cgroup ${path.join(d, e.name)}`),
    )
  for (const l of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n'))
    if (l.includes('/run/nsdn')) out.push(`mount ${l}`)
  return out
}

/**
 * After this file's tests, even failed ones: remove every container and this file's cgroup
 * parent. cgroupfs is the host's, and the sandbox does not take it away with it.
 */
function cleanUpAfterFile(): void {
  after(async () => {
    const rt = await import('../../src/runtime/index.js')
    for (const c of rt.list()) await rt.remove(c.name, { force: true }).catch(() => undefined)
    for (const d of leftoverCgroupParents())
      for (const e of fs.readdirSync(d, { withFileTypes: true }))
        if (e.isDirectory()) fs.rmdirSync(path.join(d, e.name))
    removeCgroupParents()
  })
}

/**
 * Whether a process under the container's init has taken over SIGTERM (caught or ignored): the
 * payload's `trap` has run. A stop sent before that kills the shell outright, not the test's
 * point.
 */
export function payloadTrapsTerm(initPid: number): boolean {
  const TERM = 1n << 14n // bit 15 - 1
  const walk = (pid: string): boolean => {
    let kids: string[]
    try {
      kids = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/)
    } catch {
      return false
    }
    return kids.filter(Boolean).some((k) => {
      try {
        const st = fs.readFileSync(`/proc/${k}/status`, 'utf8')
        const mask = (key: string) =>
          BigInt('0x' + (st.match(new RegExp(`^${key}:\\s*(\\w+)`, 'm'))?.[1] ?? '0'))
        if ((mask('SigIgn') | mask('SigCgt')) & TERM) return true
      } catch {
        return false
      }
      return walk(k)
    })
  }
  return walk(String(initPid))
}
