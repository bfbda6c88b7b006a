/**
 * The container runtime for real: isolation (PID 1 and ps, hostname, mounts, IPC, network, uid
 * mapping), exec in every namespace, diff, freeze/thaw, stop of a payload that ignores SIGTERM,
 * bad input, and nothing left after rm. Checked from the host with /proc, ip and ping.
 */
import { sandboxThisFile } from '../helpers/sandbox.js'
sandboxThisFile()

import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { after, test } from 'node:test'
import { Rtnl } from '../../src/netlink/rtnl.js'
import * as rt from '../../src/runtime/index.js'
import {
  assertNothingLeft,
  execOut,
  leftovers,
  payloadTrapsTerm,
  runtimeTestFile,
} from '../helpers/runtime.js'
import { eventually, ipAddrs, ping } from '../helpers/kernel.js'

runtimeTestFile({ image: 'bb' })
const SLEEP = ['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 1; done']

after(() => Rtnl.closeAll())

test('a container has its own PID 1, process list, hostname, mounts and network', async () => {
  const s = await rt.run({ name: 'iso', image: 'bb', hostname: 'box1', command: SLEEP })
  assert.equal(s.netnsPath, '/run/netns/iso')
  const ps = await execOut('iso', ['ps', '-o', 'pid,comm'])
  const rows = ps.out
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
  assert.deepEqual(rows[0], ['1', 'nsdn-init'])
  assert.ok(rows.length <= 4, `only the container's processes: ${ps.out}`) // init, sh, sleep, ps
  assert.equal((await execOut('iso', ['hostname'])).out.trim(), 'box1')
  assert.notEqual(execFileSync('hostname', { encoding: 'utf8' }).trim(), 'box1')
  // the overlay is mounted only in the container's mount namespace
  const mounts = (await execOut('iso', ['cat', '/proc/mounts'])).out
  assert.match(mounts.split('\n')[0]!, /^overlay \/ overlay /)
  assert.ok(!fs.readFileSync('/proc/self/mountinfo', 'utf8').includes('upperdir=/run/nsdn-lib'))
  // only lo in its network namespace, as ip sees it from outside
  assert.deepEqual(ipAddrs('iso'), [])
  const links = JSON.parse(execFileSync('ip', ['-n', 'iso', '-j', 'link'], { encoding: 'utf8' }))
  assert.deepEqual(
    links.map((l: { ifname: string }) => l.ifname),
    ['lo'],
  )
  // IPC: a message queue made here is not visible inside
  const q = execFileSync('ipcmk', ['-Q'], { encoding: 'utf8' }).match(/\d+/)![0]
  try {
    assert.match(fs.readFileSync('/proc/sysvipc/msg', 'utf8'), new RegExp(`\\b${q}\\b`))
    const inside = (await execOut('iso', ['cat', '/proc/sysvipc/msg'])).out.trim().split('\n')
    assert.equal(inside.length, 1, 'only the header line')
  } finally {
    execFileSync('ipcrm', ['-q', q])
  }
  await rt.remove('iso', { force: true })
})

test('exec lands in every namespace of the container, and in its cgroups', async () => {
  const s = await rt.run({ name: 'ex', image: 'bb', command: SLEEP, limits: { pids: 50 } })
  const kinds = ['cgroup', 'ipc', 'mnt', 'net', 'pid', 'uts']
  const r = await execOut('ex', [
    'sh',
    '-c',
    `for n in ${kinds.join(' ')}; do readlink /proc/self/ns/$n; done; cat /proc/self/cgroup`,
  ])
  const lines = r.out.trim().split('\n')
  for (const [i, k] of kinds.entries()) {
    const host = fs.readlinkSync(`/proc/${s.pid}/ns/${k}`)
    assert.equal(lines[i], host, `${k} namespace`)
    assert.notEqual(host, fs.readlinkSync(`/proc/self/ns/${k}`))
  }
  // pid_for_children of init's namespace: the exec'd shell is in the container's pid namespace
  assert.match(
    lines.slice(kinds.length).join('\n'),
    /pids:\/$/m,
    'in the container cgroup (its cgroup namespace root)',
  )
  // -t: a new pty of the container's own devpts
  const child = rt.spawnExec('ex', ['sh', '-c', 'tty; ls /dev/pts'], {
    tty: true,
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  let out = ''
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()))
  assert.equal(await new Promise((r) => child.on('close', r)), 0)
  assert.match(out, /^\/dev\/pts\/0\r?\n0\s+ptmx/, 'a tty of its own, the only one in its devpts')
  await rt.remove('ex', { force: true })
})

test('a user namespace maps container root to an unprivileged host uid', async () => {
  const s = await rt.run({
    name: 'user',
    image: 'bb',
    namespaces: ['mnt', 'uts', 'ipc', 'pid', 'net', 'cgroup', 'user'],
    command: SLEEP,
  })
  const status = fs.readFileSync(`/proc/${s.pid}/status`, 'utf8')
  assert.match(status, /^Uid:\s+100000\s+100000/m, 'init runs as host uid 100000')
  const r = await execOut('user', ['sh', '-c', 'id -u; cat /proc/self/uid_map'])
  const [uid, map] = r.out.trim().split('\n')
  assert.equal(uid, '0')
  assert.deepEqual(map!.trim().split(/\s+/), ['0', '100000', '65536'])
  // root inside cannot do what needs host root: the image's files stay read-only to it
  assert.notEqual((await execOut('user', ['sh', '-c', 'echo x > /bin/busybox'])).code, 0)
  await rt.remove('user', { force: true })
})

test('two containers on a bridge network ping each other', async () => {
  const net = (ip: string): unknown => ({
    driver: 'bridge',
    conf: {
      name: 'lab',
      bridge: 'br-lab',
      ipam: { type: 'static', addresses: [{ address: ip }] },
    },
  })
  await rt.run({ name: 'n1', image: 'bb', command: SLEEP, networks: [net('10.77.0.1/24')] })
  await rt.run({ name: 'n2', image: 'bb', command: SLEEP, networks: [net('10.77.0.2/24')] })
  assert.deepEqual(
    ipAddrs('n1').filter((a) => a.includes('.')),
    ['lo 127.0.0.1/8', 'eth0 10.77.0.1/24'],
  )
  assert.ok(ping('10.77.0.2', 'n1'), 'n1 -> n2')
  assert.equal(
    (await execOut('n2', ['ping', '-c1', '-W2', '10.77.0.1'])).code,
    0,
    'n2 -> n1 from inside',
  )
  assert.deepEqual((await rt.infoWithAddresses('n2')).addresses, ['10.77.0.2/24'])
  await rt.remove('n1', { force: true })
  await rt.remove('n2', { force: true })
  const links = JSON.parse(execFileSync('ip', ['-j', 'link'], { encoding: 'utf8' }))
  assert.deepEqual(
    links.filter((l: { master?: string }) => l.master === 'br-lab'),
    [],
    'no veth left on the bridge',
  )
  execFileSync('ip', ['link', 'del', 'br-lab'])
})

test('diff shows what the container added, changed and deleted; commit makes it a layer', async () => {
  await rt.run({ name: 'df', image: 'bb', command: SLEEP })
  const r = await execOut('df', [
    'sh',
    '-c',
    'echo new > /root/added; echo x >> /etc/passwd; rm /etc/hostname; mkdir -p /opt/d',
  ])
  assert.equal(r.code, 0)
  const d = rt.diff('df').map((c) => `${c.kind} ${c.path}`)
  for (const want of [
    'A /root/added',
    'C /etc/passwd',
    'D /etc/hostname',
    'A /opt',
    'A /opt/d',
    'C /etc',
    'C /root',
  ])
    assert.ok(d.includes(want), `${want} in ${d.join(', ')}`)
  assert.ok(!d.some((l) => l.includes('/bin/')), 'untouched files are not listed')
  const img = rt.commit('df', 'bb2')
  assert.equal(img.layers.length, 2)
  assert.equal(img.layers[1], rt.getImage('bb').layers[0], 'the base layer is shared, not copied')
  await rt.run({ name: 'df2', image: 'bb2', command: SLEEP })
  const seen = await execOut('df2', [
    'sh',
    '-c',
    'cat /root/added; test -e /etc/hostname || echo gone',
  ])
  assert.equal(seen.out, 'new\ngone\n')
  assert.deepEqual(rt.diff('df2'), [])
  await rt.remove('df2', { force: true })
  await rt.remove('df', { force: true })
  assert.throws(() => rt.removeImage('bb-missing'), { code: 'E_NOT_FOUND' })
  rt.removeImage('bb2')
  assert.ok(
    fs.existsSync(path.join('/run/nsdn-lib/layers', img.layers[1]!)),
    'bb still has its layer',
  )
  assert.ok(
    !fs.existsSync(path.join('/run/nsdn-lib/layers', img.layers[0]!)),
    'the committed layer is gone',
  )
})

test('freeze stops progress and thaw resumes it', async () => {
  await rt.run({
    name: 'fz',
    image: 'bb',
    command: ['sh', '-c', 'i=0; while :; do i=$((i+1)); echo $i > /tmp/n; done'],
  })
  const counter = '/run/nsdn-lib/containers/fz/upper/tmp/n'
  const read = (): number => Number(fs.readFileSync(counter, 'utf8').trim() || 0)
  assert.ok(await eventually(() => fs.existsSync(counter) && read() > 10))
  rt.freeze('fz')
  assert.equal(rt.info('fz').status, 'frozen')
  const a = read()
  await new Promise((r) => setTimeout(r, 300))
  assert.equal(read(), a, 'no progress while frozen')
  rt.thaw('fz')
  assert.ok(await eventually(() => read() > a + 10), 'progress after thaw')
  assert.equal(rt.info('fz').status, 'running')
  await rt.remove('fz', { force: true })
})

test('stop: a payload that ignores SIGTERM is killed after the timeout', async () => {
  const s = await rt.run({
    name: 'st',
    image: 'bb',
    command: ['sh', '-c', 'trap "" TERM; while :; do sleep 1; done'],
  })
  assert.ok(await eventually(() => payloadTrapsTerm(s.pid)), 'the payload ignores TERM')
  const t0 = Date.now()
  await rt.stop('st', { timeout: 0.5 })
  assert.ok(Date.now() - t0 >= 450, 'waited for the grace period')
  assert.equal(rt.info('st').status, 'stopped')
  const stat = fs.existsSync(`/proc/${s.pid}/stat`)
    ? fs.readFileSync(`/proc/${s.pid}/stat`, 'utf8')
    : ''
  assert.ok(stat === '' || / Z /.test(stat), 'init is gone')
  // a payload that honours SIGTERM stops at once, with its status recorded
  await rt.start('st')
  assert.equal(rt.info('st').status, 'running')
  await rt.remove('st', { force: true })
  const s2 = await rt.run({ name: 'st2', image: 'bb', command: SLEEP })
  assert.ok(await eventually(() => payloadTrapsTerm(s2.pid)), 'the payload traps TERM')
  await rt.stop('st2', { timeout: 5 })
  assert.equal(rt.info('st2').exitCode, 0)
  await rt.remove('st2')
})

test('a container whose init died shows stopped; rm needs -f only while it runs', async () => {
  const s = await rt.run({ name: 'dead', image: 'bb', command: SLEEP })
  await assert.rejects(rt.remove('dead'), { code: 'E_USAGE' })
  process.kill(s.pid, 'SIGKILL')
  assert.ok(await eventually(() => rt.info('dead').status === 'stopped'))
  assert.deepEqual(
    rt.list().map((c) => [c.name, c.status]),
    [['dead', 'stopped']],
  )
  await rt.remove('dead')
})

test('bad input: clear errors, nothing created', async () => {
  const before = leftovers()
  assert.throws(() => rt.importImage('nope', '/run/no-such-rootfs'), {
    code: 'E_CONFIG',
    message: /does not exist/,
  })
  assert.throws(() => rt.create({ name: 'b1', image: 'nope', command: ['true'] }), {
    code: 'E_NOT_FOUND',
    message: /no image named "nope"/,
  })
  assert.throws(
    () => rt.create({ name: 'b1', image: 'bb', command: ['true'], limits: { memory: '-5M' } }),
    {
      code: 'E_CONFIG',
      message: /limits\.memory: size "-5M" must be positive/,
    },
  )
  assert.throws(
    () => rt.create({ name: 'b1', image: 'bb', command: ['true'], limits: { memory: '5Q' } }),
    {
      code: 'E_CONFIG',
      message: /unknown unit "Q"/,
    },
  )
  assert.throws(
    () => rt.create({ name: 'b1', image: 'bb', command: ['true'], limits: { pids: -1 } }),
    {
      code: 'E_CONFIG',
      message: /limits\.pids/,
    },
  )
  assert.throws(
    () => rt.create({ name: 'b1', image: 'bb', command: ['true'], limits: { cpusetCpus: '0-63' } }),
    {
      code: 'E_CONFIG',
      message: /cpu \d+ is not on this machine/,
    },
  )
  assert.throws(
    () => rt.create({ name: 'b1', image: 'bb', command: ['true'], limits: { cpus: 0 } }),
    { code: 'E_CONFIG' },
  )
  assert.throws(() => rt.create({ name: '../x', image: 'bb', command: ['true'] }), {
    code: 'E_CONFIG',
  })
  assert.throws(
    () =>
      rt.create({
        name: 'b1',
        image: 'bb',
        command: ['true'],
        mounts: [{ source: '/no/such', target: '/x' }],
      }),
    {
      code: 'E_CONFIG',
      message: /bind source "\/no\/such" does not exist/,
    },
  )
  assert.throws(() => rt.create({ name: 'b1', image: 'bb', command: ['true'], colour: 'red' }), {
    code: 'E_CONFIG',
    message: /unknown field "colour"/,
  })
  await assert.rejects(rt.run({ name: 'b2', image: 'bb', command: ['no-such-command'] }), {
    code: 'E_NOT_FOUND',
    message: /exec no-such-command: No such file/,
  })
  assert.deepEqual(leftovers(), before)
  await rt.run({ name: 'taken', image: 'bb', command: SLEEP })
  assert.throws(() => rt.create({ name: 'taken', image: 'bb', command: ['true'] }), {
    code: 'E_EXISTS',
    message: /name "taken" is in use/,
  })
  await assert.rejects(rt.start('taken'), { code: 'E_EXISTS' })
  assert.equal(rt.info('taken').status, 'running', 'the first container is untouched')
  await rt.remove('taken', { force: true })
  assert.deepEqual(leftovers(), before)
})

test('nothing of the runtime remains: state, netns, cgroups, mounts, processes', () => {
  assertNothingLeft()
  assert.deepEqual(rt.list(), [])
  rt.removeImage('bb')
  assert.deepEqual(fs.readdirSync('/run/nsdn-lib/layers'), [])
})
