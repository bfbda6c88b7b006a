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
import { MAIN, nsdn } from '../helpers/cli.js'
import {
  assertNothingLeft,
  busyboxRoot,
  leftovers,
  removeCgroupParents,
  runtimeTestFile,
} from '../helpers/runtime.js'
import { explainScript, runPasted } from '../helpers/paste.js'
import { eventually } from '../helpers/kernel.js'

runtimeTestFile()
const PAYLOAD = ['sh', '-c', 'echo up; trap "exit 0" TERM; while :; do sleep 1; done']

/** The directory of container `name`'s group in cgroup hierarchy `h` (under the file's parent). */
const cgDir = (h: string, name: string): string =>
  path.join('/sys/fs/cgroup', h, process.env.NSDN_CGROUP_PARENT!, name)

const logOf = (name: string): string => {
  try {
    return fs.readFileSync(`/run/nsdn/containers/${name}/log`, 'utf8')
  } catch {
    return ''
  }
}

/** The host pid of the container's process running `argv` (nsdn's payload, or a pasted one). */
function payloadOf(name: string, argv: string[]): number | undefined {
  let pids: string[]
  try {
    pids = fs.readFileSync(path.join(cgDir('pids', name), 'cgroup.procs'), 'utf8').split('\n')
  } catch {
    return undefined
  }
  const want = argv.join('\0') + '\0'
  const pid = pids.find((p) => {
    try {
      return p !== '' && fs.readFileSync(`/proc/${p}/cmdline`, 'utf8') === want
    } catch {
      return false
    }
  })
  return pid === undefined ? undefined : Number(pid)
}

/**
 * A container as a learner's tools see it from the host: its limit files, its payload's cgroups,
 * hostname, mounts (without ids and device numbers), which namespaces it has of its own, the
 * named netns its network namespace is, and its log.
 */
function containerState(name: string, argv: string[]): Record<string, unknown> {
  const pid = payloadOf(name, argv)
  assert.ok(pid, `the payload of ${name} runs`)
  const read = (f: string): string => fs.readFileSync(f, 'utf8').trim()
  const sh = (cmd: string[]): string =>
    execFileSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8' }).trim()
  return {
    limits: [
      'memory/memory.limit_in_bytes',
      'cpu/cpu.cfs_quota_us',
      'cpu/cpu.cfs_period_us',
      'pids/pids.max',
      'cpuset/cpuset.cpus',
    ].map((f) => `${f} ${read(path.join(cgDir(f.split('/')[0]!, name), f.split('/')[1]!))}`),
    cgroups: read(`/proc/${pid}/cgroup`).split('\n').sort(),
    hostname: sh(['nsenter', '-t', String(pid), '-u', 'hostname']),
    mounts: read(`/proc/${pid}/mountinfo`)
      .split('\n')
      .map((l) => l.split(' ').slice(3).join(' ')),
    ownNamespaces: ['mnt', 'uts', 'ipc', 'net', 'pid', 'cgroup'].filter(
      (n) => fs.readlinkSync(`/proc/${pid}/ns/${n}`) !== fs.readlinkSync(`/proc/self/ns/${n}`),
    ),
    netns: sh(['ip', 'netns', 'identify', String(pid)]),
    netnsList: sh(['ip', 'netns', 'list']),
    log: logOf(name),
  }
}

/** Take down a pasted container: its processes, named netns, cgroups, files. */
function removePasted(name: string): void {
  const pid = payloadOf(name, PAYLOAD)
  if (pid) process.kill(pid, 'SIGKILL') // PID 1 of its namespace: the rest goes with it
  spawnSync('ip', ['netns', 'del', name])
  for (const h of fs.readdirSync('/sys/fs/cgroup')) {
    const d = cgDir(h, name)
    for (let i = 0; i < 500 && fs.existsSync(d); i++)
      try {
        fs.rmdirSync(d)
      } catch {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10) // tasks still exiting
      }
  }
  removeCgroupParents()
  fs.rmSync(`/run/nsdn/containers/${name}`, { recursive: true, force: true })
  fs.rmSync(`/run/nsdn-lib/containers/${name}`, { recursive: true, force: true })
}

test('image import from a tarball; run in the foreground passes the exit status', () => {
  const tar = '/run/bb.tar'
  execFileSync('tar', ['-cf', tar, '-C', busyboxRoot(), '.'])
  assert.equal(nsdn(['image', 'import', 'bb', tar]).status, 0)
  assert.match(nsdn(['image', 'list']).stdout, /^bb\s+1\s/m)
  const r = nsdn([
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
  ])
  assert.equal(r.stdout, 'h1\n')
  assert.equal(r.status, 3)
  assert.match(nsdn(['ps', '-a']).stdout, /^fg\s+stopped \(3\)/m)
  assert.equal(nsdn(['rm', 'fg']).status, 0)
})

test('run -d, exec, ps, info, logs; --explain pasted into a root shell builds the same container', async () => {
  const r = nsdn([
    '--explain',
    'run',
    '--name',
    'web',
    '--image',
    'bb',
    '--hostname',
    'box',
    '-d',
    '--memory',
    '64M',
    '--pids',
    '50',
    '--cpus',
    '0.5',
    '--',
    ...PAYLOAD,
  ])
  assert.equal(r.status, 0, r.stderr)
  assert.equal(r.stdout, 'web\n')
  assert.match(nsdn(['ps']).stdout, /^web\s+running\s+\d+\s+bb\s+sh -c/m)
  const e = nsdn(['exec', 'web', '--', 'sh', '-c', 'cat /proc/1/cmdline | tr "\\0" " "; exit 5'])
  assert.equal(e.status, 5)
  assert.match(e.stdout, /nsdn-init run/)
  const info = JSON.parse(nsdn(['--json', 'info', 'web']).stdout)
  assert.equal(info.status, 'running')
  assert.deepEqual(info.limits, { memory: 67108864, pids: 50, cpus: 0.5 })
  assert.ok(info.usage.pids.current >= 2)
  assert.match(nsdn(['info', 'web']).stdout, /^State:\s+RUNNING$/m)
  assert.ok(await eventually(() => nsdn(['logs', 'web']).stdout === 'up\n', 30000))
  const missing = nsdn(['exec', 'nope', '--', 'true'])
  assert.equal(missing.status, 1)
  assert.match(missing.stderr, /no container named "nope" \[E_NOT_FOUND\]/)
  assert.equal(nsdn(['rm', 'web']).status, 64, 'rm of a running container needs -f')
  const built = containerState('web', PAYLOAD)
  assert.equal(nsdn(['stop', 'web']).status, 0)
  assert.match(nsdn(['ps', '-a']).stdout, /^web\s+stopped \(0\)/m)
  assert.equal(nsdn(['rm', 'web']).status, 0)
  assert.deepEqual(leftovers(), [], 'nothing of the container is left before the paste')

  // the teaching promise: the printed lines, pasted into a root shell, build the same container
  const script = explainScript(r.stderr)
  assert.doesNotMatch(script, /^(nsdn|\S*nsdn-init) /m, 'the script needs no nsdn')
  runPasted(script)
  try {
    assert.ok(
      await eventually(() => payloadOf('web', PAYLOAD) !== undefined, 30000),
      'the pasted payload runs',
    )
    assert.ok(await eventually(() => logOf('web') === 'up\n', 30000), 'and writes its log')
    assert.deepEqual(containerState('web', PAYLOAD), built)
  } finally {
    removePasted('web')
  }
  assert.deepEqual(leftovers(), [])
})

test('exec -t: the end of stdin ends the session; through a pty it is a terminal', () => {
  assert.equal(
    nsdn(['run', '--name', 'tty', '--image', 'bb', '-d', '--', 'sleep', '1000']).status,
    0,
  )
  const cli = `${process.execPath} ${MAIN}`
  // a hang is killed by the timeout (a signal, no status): no timing is asserted
  const sh = (line: string, input?: string): { status: number | null; out: string } => {
    const r = spawnSync('sh', ['-c', line], { encoding: 'utf8', input, timeout: 60000 })
    return { status: r.status, out: r.stdout }
  }
  try {
    const closed = sh(`${cli} exec -t tty -- sh </dev/null`)
    assert.equal(closed.status, 0, `an interactive sh with stdin at EOF ends: ${closed.out}`)
    const piped = sh(`printf 'echo hi from $(hostname)\\n' | ${cli} exec -t tty -- sh`)
    assert.equal(piped.status, 0, piped.out)
    assert.match(piped.out, /^hi from tty\r$/m, 'the piped line ran, then EOF ended sh')
    const cat = sh(`printf 'a\\nb\\n' | ${cli} exec -t tty -- sh -c 'cat; echo "cat: $?"'`)
    assert.equal(cat.status, 0, cat.out)
    assert.match(cat.out, /^cat: 0\r$/m, 'cat read to the end of its input')
    // a real terminal on our side, as a user at a shell (script(1) gives us a pty)
    const term = sh(
      `script -qec "${cli} exec -t tty -- sh -c 'tty; read x; echo got \\$x; exit 3'" /dev/null`,
      'hello\n',
    )
    assert.match(term.out, /^\/dev\/pts\/0\r$/m, 'a pty of the container')
    assert.match(term.out, /^got hello\r$/m, 'our typing reached it')
    assert.equal(term.status, 3, 'its status came back')
  } finally {
    assert.equal(nsdn(['rm', '-f', 'tty']).status, 0)
  }
})

test('attach follows the output and feeds the input of a detached container', async () => {
  assert.equal(nsdn(['run', '--name', 'att', '--image', 'bb', '-d', '--', 'sh']).status, 0)
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
    assert.equal(nsdn(['rm', '-f', 'att']).status, 0)
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
  const c = nsdn(['create', '--from-lxc', conf, '--name', 'lx'])
  assert.equal(c.status, 0, c.stderr)
  assert.match(c.stderr, /lxc\.apparmor\.profile \(line 5\): not supported, ignored/)
  assert.equal(nsdn(['start', '-d', 'lx']).status, 0)
  assert.equal(nsdn(['exec', 'lx', '--', 'hostname']).stdout, 'lxc-box\n')
  assert.match(nsdn(['exec', 'lx', '--', 'cat', '/proc/mounts']).stdout, /^tmpfs \/scratch tmpfs/m)
  assert.equal(JSON.parse(nsdn(['--json', 'info', 'lx']).stdout).limits.memory, 48 * 2 ** 20)
  assert.equal(nsdn(['clone', 'lx', 'lx2']).status, 64, 'clone needs a stopped source')
  assert.equal(nsdn(['stop', '-t', '1', 'lx']).status, 0)
  assert.equal(nsdn(['clone', 'lx', 'lx2']).status, 0)
  assert.equal(nsdn(['start', '-d', 'lx2']).status, 0)
  assert.equal(
    nsdn(['exec', 'lx2', '--', 'hostname']).stdout,
    'lxc-box\n',
    'a hostname that is not the name is kept',
  )
  assert.equal(nsdn(['rm', '-f', 'lx', 'lx2']).status, 0)
  assert.equal(nsdn(['image', 'rm', 'lx-rootfs']).status, 0)
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
    const r = nsdn([...args])
    assert.equal(r.status, code, `${args.join(' ')}: ${r.stderr}`)
    assert.match(r.stderr, re)
  }
  assert.deepEqual(leftovers(), before)
})

test('nothing of ours remains', () => {
  assert.equal(nsdn(['image', 'rm', 'bb']).status, 0)
  assertNothingLeft()
})
