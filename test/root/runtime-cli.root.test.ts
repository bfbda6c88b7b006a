/**
 * The container commands through the nsdn binary, as an LXC or Docker user types them: image
 * import from a tarball, run (foreground and -d), exec, ps, info, logs, attach, --explain,
 * create --from-lxc, clone, stop, rm; exit statuses pass through; nothing left.
 */
import { sandboxThisFile } from '../helpers/sandbox.js'
sandboxThisFile()

import assert from 'node:assert/strict'
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { assertNothingLeft, busyboxRoot, leftovers, runtimeTestFile } from '../helpers/runtime.js'
import { eventually } from '../helpers/kernel.js'

runtimeTestFile()
const MAIN = path.resolve(__dirname, '../../src/cli/main.js')

function nsdn(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [MAIN, ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr }
}

test('image import from a tarball; run in the foreground passes the exit status', () => {
  const tar = '/run/bb.tar'
  execFileSync('tar', ['-cf', tar, '-C', busyboxRoot(), '.'])
  assert.equal(nsdn('image', 'import', 'bb', tar).code, 0)
  assert.match(nsdn('image', 'list').out, /^bb\s+1\s/m)
  const r = nsdn(
    'run',
    '--name',
    'fg',
    '--image',
    'bb',
    '--hostname',
    'h1',
    '--',
    'sh',
    '-c',
    'hostname; exit 3',
  )
  assert.equal(r.out, 'h1\n')
  assert.equal(r.code, 3)
  assert.match(nsdn('ps', '-a').out, /^fg\s+stopped \(3\)/m)
  assert.equal(nsdn('rm', 'fg').code, 0)
})

test('run -d, exec, ps, info, logs; --explain shows cgroup writes, mounts and namespaces', async () => {
  const r = nsdn(
    '--explain',
    'run',
    '--name',
    'web',
    '--image',
    'bb',
    '-d',
    '--memory',
    '64M',
    '--pids',
    '50',
    '--cpus',
    '0.5',
    '--',
    'sh',
    '-c',
    'echo up; trap "exit 0" TERM; while :; do sleep 1; done',
  )
  assert.equal(r.code, 0, r.err)
  assert.equal(r.out, 'web\n')
  const parent = process.env.NSDN_CGROUP_PARENT!
  for (const line of [
    `mkdir -p /sys/fs/cgroup/memory/${parent}/web`,
    `echo 67108864 > /sys/fs/cgroup/memory/${parent}/web/memory.limit_in_bytes`,
    `echo 50000 > /sys/fs/cgroup/cpu/${parent}/web/cpu.cfs_quota_us`,
    `echo 50 > /sys/fs/cgroup/pids/${parent}/web/pids.max`,
    'unshare --mount --uts --ipc --pid --net --cgroup --fork',
    'mount --make-rprivate /',
    'mount -t proc -o nosuid,nodev,noexec proc /run/nsdn/containers/web/rootfs/proc',
    'cd /run/nsdn/containers/web/rootfs && pivot_root . . && umount -l . && cd /',
    'hostname web',
  ])
    assert.ok(r.err.split('\n').includes(line), `--explain shows: ${line}\n${r.err}`)
  assert.match(r.err, /^echo \d+ > \/sys\/fs\/cgroup\/memory\/.*\/web\/cgroup\.procs$/m)
  assert.match(
    r.err,
    /^mount -t overlay -o lowerdir=\/run\/nsdn-lib\/layers\/\w+,upperdir=\/run\/nsdn-lib\/containers\/web\/upper,workdir=\S+ overlay \/run\/nsdn\/containers\/web\/rootfs$/m,
  )
  assert.match(r.err, /^ip netns attach web \d+$/m)
  assert.match(nsdn('ps').out, /^web\s+running\s+\d+\s+bb\s+sh -c/m)
  const e = nsdn('exec', 'web', '--', 'sh', '-c', 'cat /proc/1/cmdline | tr "\\0" " "; exit 5')
  assert.equal(e.code, 5)
  assert.match(e.out, /nsdn-init run/)
  const info = JSON.parse(nsdn('--json', 'info', 'web').out)
  assert.equal(info.status, 'running')
  assert.deepEqual(info.limits, { memory: 67108864, pids: 50, cpus: 0.5 })
  assert.ok(info.usage.pids.current >= 2)
  assert.match(nsdn('info', 'web').out, /^State:\s+RUNNING$/m)
  assert.ok(await eventually(() => nsdn('logs', 'web').out === 'up\n', 30000))
  const missing = nsdn('exec', 'nope', '--', 'true')
  assert.equal(missing.code, 1)
  assert.match(missing.err, /no container named "nope" \[E_NOT_FOUND\]/)
  assert.equal(nsdn('rm', 'web').code, 64, 'rm of a running container needs -f')
  const limitFiles = ['memory/memory.limit_in_bytes', 'cpu/cpu.cfs_quota_us', 'pids/pids.max']
  const cg = (f: string): string =>
    path.join('/sys/fs/cgroup', f.split('/')[0]!, parent, 'web', f.split('/')[1]!)
  const applied = limitFiles.map((f) => fs.readFileSync(cg(f), 'utf8'))
  assert.equal(nsdn('stop', 'web').code, 0)
  assert.match(nsdn('ps', '-a').out, /^web\s+stopped \(0\)/m)
  assert.equal(nsdn('rm', 'web').code, 0)
  // the cgroup steps --explain printed, pasted into a shell, build the same limits
  const script = r.err
    .split('\n')
    .filter(
      (l) =>
        l.includes(`/sys/fs/cgroup/`) && l.includes(`${parent}`) && !l.includes('cgroup.procs'),
    )
  execFileSync('sh', ['-e', '-c', script.join('\n')])
  assert.deepEqual(
    limitFiles.map((f) => fs.readFileSync(cg(f), 'utf8')),
    applied,
  )
  for (const d of new Set(script.filter((l) => l.startsWith('mkdir -p ')).map((l) => l.slice(9))))
    if (d.endsWith('/web')) fs.rmdirSync(d)
})

test('attach follows the output and feeds the input of a detached container', async () => {
  assert.equal(nsdn('run', '--name', 'att', '--image', 'bb', '-d', '--', 'sh').code, 0)
  const a = spawn(process.execPath, [MAIN, 'attach', 'att'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  try {
    let out = ''
    a.stdout.on('data', (d: Buffer) => (out += d.toString()))
    a.stdin.write('echo hello from $(hostname)\n')
    // a CLI start takes seconds on a loaded machine: wait generously
    assert.ok(await eventually(() => out.includes('hello from att'), 30000), out)
    a.stdin.write('exit 0\n')
    const code = await new Promise((r) => a.on('exit', r))
    assert.equal(code, 0, 'attach ends when the container does')
  } finally {
    a.kill() // a failed check must not leave attach holding the test open
    assert.equal(nsdn('rm', '-f', 'att').code, 0)
  }
})

test('create --from-lxc reads an LXC config; start -d; clone', () => {
  const conf = '/run/lxc.conf'
  fs.writeFileSync(
    conf,
    [
      'lxc.uts.name = lxc-box',
      `lxc.rootfs.path = dir:${busyboxRoot()}`,
      'lxc.cgroup.memory.limit_in_bytes = 48M',
      'lxc.init.cmd = sleep 1000',
      'lxc.apparmor.profile = generated',
      'lxc.mount.entry = tmpfs scratch tmpfs defaults 0 0',
    ].join('\n'),
  )
  const c = nsdn('create', '--from-lxc', conf, '--name', 'lx')
  assert.equal(c.code, 0, c.err)
  assert.match(c.err, /lxc\.apparmor\.profile \(line 5\): not supported, ignored/)
  assert.equal(nsdn('start', '-d', 'lx').code, 0)
  assert.equal(nsdn('exec', 'lx', '--', 'hostname').out, 'lxc-box\n')
  assert.match(nsdn('exec', 'lx', '--', 'cat', '/proc/mounts').out, /^tmpfs \/scratch tmpfs/m)
  assert.equal(JSON.parse(nsdn('--json', 'info', 'lx').out).limits.memory, 48 * 2 ** 20)
  assert.equal(nsdn('clone', 'lx', 'lx2').code, 64, 'clone needs a stopped source')
  assert.equal(nsdn('stop', '-t', '1', 'lx').code, 0)
  assert.equal(nsdn('clone', 'lx', 'lx2').code, 0)
  assert.equal(nsdn('start', '-d', 'lx2').code, 0)
  assert.equal(
    nsdn('exec', 'lx2', '--', 'hostname').out,
    'lxc-box\n',
    'a hostname that is not the name is kept',
  )
  assert.equal(nsdn('rm', '-f', 'lx', 'lx2').code, 0)
  assert.equal(nsdn('image', 'rm', 'lx-rootfs').code, 0)
})

test('bad input through the CLI: clear errors, exit statuses, nothing created', () => {
  const before = leftovers()
  const cases: Array<[string[], number, RegExp]> = [
    [
      ['run', '--name', 'x', '--image', 'nope', '--', 'true'],
      1,
      /no image named "nope" \[E_NOT_FOUND\]/,
    ],
    [
      ['run', '--name', 'x', '--image', 'bb', '--memory', '-5M', '--', 'true'],
      78,
      /limits\.memory: size "-5M" must be positive \[E_CONFIG\]/,
    ],
    [
      ['run', '--name', 'x', '--image', 'bb', '--memory', '12X', '--', 'true'],
      78,
      /unknown unit "X"/,
    ],
    [
      ['run', '--name', 'x', '--image', 'bb', '--cpuset-cpus', '0-99', '--', 'true'],
      78,
      /is not on this machine/,
    ],
    [
      ['run', '--name', 'x', '--image', 'bb', '--net', 'bridge:{', '--', 'true'],
      78,
      /--net #1: not valid JSON/,
    ],
    [['image', 'import', 'y', '/run/none'], 78, /"\/run\/none" does not exist/],
    [['stop', '-s', 'BOGUS', 'x'], 64, /unknown signal "BOGUS"/],
    [
      ['--dry-run', 'run', '--name', 'x', '--image', 'bb', '--', 'true'],
      64,
      /cannot run under --dry-run/,
    ],
  ]
  for (const [args, code, re] of cases) {
    const r = nsdn(...args)
    assert.equal(r.code, code, `${args.join(' ')}: ${r.err}`)
    assert.match(r.err, re)
  }
  assert.deepEqual(leftovers(), before)
})

test('nothing of ours remains', () => {
  assert.equal(nsdn('image', 'rm', 'bb').code, 0)
  assertNothingLeft()
})
