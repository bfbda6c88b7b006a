/**
 * cgroups for real on this host: v1 limits (a memory hog OOM-killed at its limit, a cpu quota of
 * 0.5 measured, a fork bomb stopped at pids.max) and v2's freeze, kill and procs on the v2 tree
 * (which has no controllers here, so v2 limits fail with the missing feature named).
 */
import { sandboxThisFile } from '../helpers/sandbox.js'
sandboxThisFile()

import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import { CgroupV1, CgroupV2, cgroupMounts, probeBackend } from '../../src/runtime/cgroups.js'
import * as rt from '../../src/runtime/index.js'
import { assertNothingLeft, execOut, runtimeTestFile } from '../helpers/runtime.js'
import { eventually } from '../helpers/kernel.js'

runtimeTestFile({ image: 'bb' })
const v1 = cgroupMounts().some((m) => m.type === 'cgroup')
const v2Root = cgroupMounts().find((m) => m.type === 'cgroup2')?.dir

const noV1 = v1 ? false : 'no cgroup v1 hierarchies on this host'

test('the backend is chosen by probing the mounts', () => {
  assert.equal(probeBackend(), v1 ? 'v1' : 'v2')
})

test('a memory hog is OOM-killed at its memory limit', { skip: noV1 }, async () => {
  const s = await rt.run(
    {
      name: 'hog',
      image: 'bb',
      limits: { memory: '32M' },
      command: ['dd', 'if=/dev/zero', 'of=/dev/null', 'bs=96M', 'count=1'],
    },
    { attach: true },
  )
  const code = await s.exited!
  assert.equal(code, 128 + 9, 'the payload died of SIGKILL')
  const mem = path.join(
    cgroupMounts().find((m) => m.controllers.includes('memory'))!.dir,
    process.env.NSDN_CGROUP_PARENT!,
    'hog',
  )
  assert.equal(
    fs.readFileSync(path.join(mem, 'memory.limit_in_bytes'), 'utf8').trim(),
    String(32 * 2 ** 20),
  )
  assert.match(fs.readFileSync(path.join(mem, 'memory.oom_control'), 'utf8'), /^oom_kill [1-9]/m)
  assert.ok(
    Number(fs.readFileSync(path.join(mem, 'memory.failcnt'), 'utf8')) > 0,
    'the limit was hit',
  )
  assert.equal(rt.info('hog').status, 'stopped')
  await rt.remove('hog')
})

test('a cpu quota of 0.5 gives about half a cpu', { skip: noV1 }, async (t) => {
  // two busy loops: the group wants two cpus and gets what the quota allows
  const loop = 'while :; do :; done'
  await rt.run({
    name: 'cpu',
    image: 'bb',
    limits: { cpus: 0.5 },
    command: ['sh', '-c', `${loop} & ${loop}`],
  })
  try {
    const cg = rt.cgroupOf('cpu')
    const a = cg.stats().cpu!
    const t0 = process.hrtime.bigint()
    await new Promise((r) => setTimeout(r, 2000))
    const b = cg.stats().cpu!
    const share = (b.usageNs - a.usageNs) / Number(process.hrtime.bigint() - t0)
    t.diagnostic(
      `cpu share ${share.toFixed(2)}, throttled ${b.throttled - a.throttled} of ${b.periods - a.periods} periods, load ${os.loadavg()[0]}`,
    )
    // the quota bounds it from above; the machine is shared, so below it only has to run
    assert.ok(share > 0.05 && share < 0.62, `cpu share ${share.toFixed(2)}`)
    if (share > 0.4)
      assert.ok(b.throttled > a.throttled, 'at the quota, the scheduler throttles the group')
    else
      t.diagnostic(
        'the machine was too busy for the group to reach its quota: throttling not checked',
      )
  } finally {
    await rt.remove('cpu', { force: true })
  }
})

test('a fork bomb stops at pids.max', { skip: noV1 }, async () => {
  await rt.run({
    name: 'bomb',
    image: 'bb',
    limits: { pids: 20 },
    command: ['sh', '-c', 'sleep 1000'],
  })
  // the shell forks until the kernel refuses (busybox sh then gives up)
  const r = await execOut('bomb', ['sh', '-c', 'while :; do sleep 30 >/dev/null & done'])
  assert.notEqual(r.code, 0)
  const p = rt.cgroupOf('bomb').stats().pids!
  assert.equal(p.limit, 20)
  assert.ok(p.current <= 20, `pids.current ${p.current}`)
  assert.ok(p.limitHits > 0, 'forks were refused (pids.events max)')
  assert.equal(rt.info('bomb').status, 'running', 'the container itself survives')
  await rt.remove('bomb', { force: true })
  // init starts exec'd commands: with init and its payload at pids.max its fork fails, and
  // that refuses the exec without ending init
  await rt.run({ name: 'full', image: 'bb', limits: { pids: 2 }, command: ['sleep', '1000'] })
  assert.equal((await execOut('full', ['true'])).code, 126, 'exec refused: init could not fork')
  assert.equal(rt.info('full').status, 'running', 'init lives on')
  await rt.remove('full', { force: true })
})

test(
  'v2: procs, freeze and kill on the v2 tree',
  { skip: v2Root ? false : 'no cgroup2 mount' },
  async () => {
    const cg = new CgroupV2(`v2-${process.pid}`, v2Root!)
    cg.create({})
    const file = '/run/v2-progress'
    const child = spawn('sh', ['-c', `while :; do echo x >> ${file}; sleep 0.01; done`], {
      stdio: 'ignore',
    })
    const gone = new Promise<string | null>((r) => child.on('exit', (_c, sig) => r(sig)))
    try {
      cg.addProc(child.pid!)
      // the shell is in; a `sleep` it forked since then may be too
      assert.ok(cg.pids().includes(child.pid!), `${cg.pids()}`)
      assert.ok(await eventually(() => fs.existsSync(file) && fs.statSync(file).size > 10))
      cg.freeze()
      assert.ok(cg.frozen())
      const size = fs.statSync(file).size
      await new Promise((r) => setTimeout(r, 200))
      assert.equal(fs.statSync(file).size, size, 'no progress while frozen')
      cg.thaw()
      assert.ok(await eventually(() => fs.statSync(file).size > size), 'progress after thaw')
      cg.kill()
      assert.equal(await gone, 'SIGKILL')
      cg.destroy()
      assert.ok(!fs.existsSync(cg.dir))
    } finally {
      // a failed check must not leave the loop running: it would keep this file and its group
      if (fs.existsSync(cg.dir)) {
        cg.thaw()
        cg.kill() // the shell and any sleep it forked
        await gone
        cg.destroy()
      }
      fs.rmSync(file, { force: true })
    }
  },
)

test(
  'v2 limits without controllers fail before anything is made, naming the feature',
  { skip: v2Root ? false : 'no cgroup2 mount' },
  (t) => {
    const avail = fs.readFileSync(path.join(v2Root!, 'cgroup.controllers'), 'utf8')
    if (avail.includes('memory')) return void t.skip('this host has v2 controllers: no refusal')
    const cg = new CgroupV2('v2-limits', v2Root!)
    assert.throws(() => cg.create({ memory: 2 ** 26 }), {
      code: 'E_KERNEL_FEATURE',
      message: /memory controller/,
    })
    assert.ok(!fs.existsSync(cg.dir))
  },
)

test('v1: a limit the kernel lacks is named, and nothing is left', { skip: noV1 }, (t) => {
  const cg = new CgroupV1('io')
  if (
    fs.existsSync(
      path.join(cgroupMounts().find((m) => m.controllers.includes('blkio'))!.dir, 'blkio.weight'),
    )
  )
    return void t.skip('this kernel has blkio.weight: no refusal')
  assert.throws(() => cg.create({ ioWeight: 500 }), {
    code: 'E_KERNEL_FEATURE',
    message: /blkio\.weight/,
  })
  assert.deepEqual(
    cg.dirs.filter((d) => fs.existsSync(d)),
    [],
  )
})

/** The directories of cgroup parent `p` (a path under each hierarchy's root) that exist. */
const parentDirs = (p: string): string[] =>
  [...new Set(cgroupMounts().map((m) => path.join(m.dir, p)))].filter((d) => fs.existsSync(d))

/** Start and remove `n` containers named PREFIX-i in a node process of its own; its output. */
function worker(prefix: string, n: number, parent: string): Promise<{ code: number; out: string }> {
  const index = path.resolve(__dirname, '../../src/runtime/index.js')
  const script = `
    const rt = require(${JSON.stringify(index)})
    ;(async () => {
      for (let i = 0; i < ${n}; i++) {
        const name = '${prefix}-' + i
        await rt.run({ name, image: 'bb', command: ['sleep', '1000'] })
        await rt.remove(name, { force: true })
      }
    })().catch((e) => { console.error(e.code, e.message); process.exit(1) })`
  const child = spawn(process.execPath, ['-e', script], {
    env: { ...process.env, NSDN_CGROUP_PARENT: parent },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr.on('data', (d: Buffer) => (out += d.toString()))
  return new Promise((r) => child.on('close', (code) => r({ code: code ?? -1, out })))
}

test('two processes start and remove containers under one fresh parent at once', async () => {
  // Each rm of a last container removes the parent, each start makes it again: the two race
  // on making, seeding (v1 cpuset) and removing the same parent many times.
  const top = `nsdn-race-${process.pid}`
  const parent = `${top}/p`
  const [a, b] = await Promise.all([worker('ra', 12, parent), worker('rb', 12, parent)])
  assert.equal(a.code, 0, a.out)
  assert.equal(b.code, 0, b.out)
  assert.deepEqual(parentDirs(top), [], 'the parent went with the last container')
})

test('rm of the last container leaves no empty parent directory', async () => {
  const top = `nsdn-last-${process.pid}`
  const saved = process.env.NSDN_CGROUP_PARENT
  process.env.NSDN_CGROUP_PARENT = `${top}/p`
  try {
    await rt.run({ name: 'l1', image: 'bb', limits: { pids: 10 }, command: ['sleep', '1000'] })
    await rt.run({ name: 'l2', image: 'bb', command: ['sleep', '1000'] })
    const dirs = parentDirs(top)
    assert.ok(dirs.length > 0, 'the parent exists while containers run')
    await rt.remove('l1', { force: true })
    assert.deepEqual(parentDirs(top), dirs, 'the parent stays while a container is in it')
    await rt.remove('l2', { force: true })
    assert.deepEqual(parentDirs(top), [], 'no empty parent left in any hierarchy')
  } finally {
    process.env.NSDN_CGROUP_PARENT = saved
  }
})

test('nothing of ours remains', () => {
  assertNothingLeft()
})
