/** The container spec, sizes and cpusets, LXC configs, the exec fast path's argv: pure logic. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseExecArgv } from '../../src/cli/commands/exec.js'
import { weightToShares } from '../../src/runtime/cgroups.js'
import { specFromLxc } from '../../src/runtime/lxc-config.js'
import {
  DEFAULT_CAPS,
  capMask,
  parseCpuset,
  parseSize,
  parseSpec,
  toRaw,
} from '../../src/runtime/spec.js'

test('sizes: binary units, case-insensitive; negative, zero and unknown units refused', () => {
  assert.equal(parseSize('64M', 'm'), 64 * 2 ** 20)
  assert.equal(parseSize('64m', 'm'), 64 * 2 ** 20)
  assert.equal(parseSize('1G', 'm'), 2 ** 30)
  assert.equal(parseSize('512KiB', 'm'), 512 * 1024)
  assert.equal(parseSize('2MB', 'm'), 2 * 2 ** 20)
  assert.equal(parseSize('100', 'm'), 100)
  assert.equal(parseSize(4096, 'm'), 4096)
  assert.throws(() => parseSize('-5M', 'limits.memory'), {
    code: 'E_CONFIG',
    message: /limits\.memory: size "-5M" must be positive/,
  })
  assert.throws(() => parseSize('0', 'm'), { code: 'E_CONFIG' })
  assert.throws(() => parseSize('5Q', 'm'), { message: /unknown unit "Q"/ })
  assert.throws(() => parseSize('lots', 'm'), { message: /invalid size/ })
  assert.throws(() => parseSize(-1, 'm'), { code: 'E_CONFIG' })
})

test('cpusets: lists and ranges, every cpu on the machine', () => {
  const cpus = new Set([0, 1])
  assert.equal(parseCpuset('0-1', 'c', cpus), '0-1')
  assert.equal(parseCpuset('1', 'c', cpus), '1')
  assert.throws(() => parseCpuset('0-2', 'limits.cpusetCpus', cpus), {
    message: /limits\.cpusetCpus: cpu 2 is not on this machine/,
  })
  assert.throws(() => parseCpuset('a', 'c', cpus), { message: /invalid cpu list/ })
})

test('a minimal spec gets the defaults; every field is checked with its path', () => {
  const s = parseSpec({ name: 'web', image: 'bb', command: ['httpd'] })
  assert.deepEqual(s.rootfs, { image: 'bb' })
  assert.equal(s.hostname, 'web')
  assert.deepEqual(s.namespaces, ['mnt', 'uts', 'ipc', 'pid', 'net', 'cgroup'])
  assert.deepEqual(s.uidMap, [])
  assert.deepEqual(s.capabilities, DEFAULT_CAPS)
  assert.match(s.env[0]!, /^PATH=/)
  assert.deepEqual(parseSpec(toRaw(s)), s, 'toRaw round-trips')
  const u = parseSpec({
    name: 'u',
    hostRoot: true,
    command: ['id'],
    namespaces: ['mnt', 'pid', 'user'],
  })
  assert.deepEqual(u.uidMap, [{ container: 0, host: 100000, size: 65536 }])
  const bad: Array<[unknown, RegExp]> = [
    [{ name: 'x', command: ['a'] }, /exactly one of "image" and "hostRoot: true"/],
    [{ name: 'x', image: 'bb', hostRoot: true, command: ['a'] }, /exactly one/],
    [{ name: 'x', image: 'bb' }, /spec\.command: no command/],
    [
      { name: 'x', image: 'bb', command: ['a'], namespaces: ['net'] },
      /needs its own mnt namespace/,
    ],
    [
      { name: 'x', image: 'bb', command: ['a'], namespaces: ['mnt', 'pid', 'time'] },
      /spec\.namespaces\[2\]: unknown namespace "time"/,
    ],
    [
      { name: 'x', image: 'bb', command: ['a'], capabilities: ['CAP_FLY'] },
      /unknown capability "CAP_FLY"/,
    ],
    [
      { name: 'x', image: 'bb', command: ['a'], env: ['NOEQUALS'] },
      /spec\.env\[0\]: "NOEQUALS" is not KEY=VALUE/,
    ],
    [{ name: 'x', image: 'bb', command: ['a'], limits: { cpus: -1 } }, /spec\.limits\.cpus/],
    [
      { name: 'x', image: 'bb', command: ['a'], limits: { memory: '64M', memorySwap: '32M' } },
      /at least memory/,
    ],
    [{ name: 'x', image: 'bb', command: ['a'], limits: { mem: 1 } }, /unknown field "mem"/],
    [
      { name: 'x', image: 'bb', command: ['a'], mounts: [{ type: 'nfs', target: '/x' }] },
      /unknown mount type "nfs"/,
    ],
    [
      { name: 'x', image: 'bb', command: ['a'], mounts: [{ type: 'tmpfs', target: 'rel' }] },
      /must be an absolute path/,
    ],
    [
      { name: 'x', image: 'bb', command: ['a'], networks: [{ driver: 'bridge', mac: 'zz' }] },
      /invalid MAC/,
    ],
    [
      {
        name: 'x',
        image: 'bb',
        command: ['a'],
        namespaces: ['mnt', 'pid'],
        networks: [{ driver: 'bridge' }],
      },
      /need the net namespace/,
    ],
  ]
  for (const [raw, re] of bad)
    assert.throws(() => parseSpec(raw), { code: 'E_CONFIG', message: re }, JSON.stringify(raw))
})

test('capabilities as the mask nsdn-init takes', () => {
  assert.equal(capMask(['CHOWN']), '1')
  assert.equal(capMask(['NET_ADMIN', 'SYS_ADMIN']), (2n ** 12n + 2n ** 21n).toString(16))
})

test('cpu weight maps onto v1 shares at both ends and the default', () => {
  assert.equal(weightToShares(1), 2)
  assert.equal(weightToShares(10000), 262144)
  assert.ok(Math.abs(weightToShares(100) - 2597) < 3)
})

test('an LXC config becomes a spec; unsupported keys are named', () => {
  const conf = [
    '# a container made by lxc-create -t busybox',
    'lxc.uts.name = web1',
    'lxc.rootfs.path = dir:/var/lib/lxc/web1/rootfs',
    'lxc.net.0.type = veth',
    'lxc.net.0.link = lxcbr0',
    'lxc.net.0.flags = up',
    'lxc.net.0.hwaddr = 00:16:3e:aa:bb:cc',
    'lxc.net.0.ipv4.address = 10.0.3.10/24',
    'lxc.net.0.ipv4.gateway = 10.0.3.1',
    'lxc.cgroup.memory.limit_in_bytes = 256M',
    'lxc.cgroup2.pids.max = 100',
    'lxc.cgroup.cpu.cfs_quota_us = 50000',
    'lxc.cgroup.cpu.cfs_period_us = 100000',
    'lxc.cgroup.cpuset.cpus = 0',
    'lxc.mount.entry = /srv/data srv/data none bind,ro 0 0',
    'lxc.mount.entry = tmpfs run tmpfs defaults 0 0',
    'lxc.apparmor.profile = unconfined',
    'lxc.init.cmd = /sbin/init',
  ].join('\n')
  const r = specFromLxc(conf, 'web1.conf')
  assert.equal(r.rootfsPath, '/var/lib/lxc/web1/rootfs')
  assert.deepEqual(r.spec, {
    hostname: 'web1',
    command: ['/sbin/init'],
    limits: { memory: '256M', pids: '100', cpusetCpus: '0', cpus: 0.5 },
    mounts: [
      { type: 'bind', source: '/srv/data', target: '/srv/data', readonly: true },
      { type: 'tmpfs', target: '/run' },
    ],
    networks: [
      {
        driver: 'bridge',
        conf: {
          name: 'lxc-lxcbr0',
          bridge: 'lxcbr0',
          ipam: {
            type: 'static',
            addresses: [{ address: '10.0.3.10/24' }],
            routes: [{ dst: '0.0.0.0/0', gw: '10.0.3.1' }],
          },
        },
        ifname: 'eth0',
        mac: '00:16:3e:aa:bb:cc',
      },
    ],
  })
  assert.deepEqual(r.unsupported, ['lxc.apparmor.profile (line 17)'])
  assert.throws(() => specFromLxc('lxc.uts.name web', 'c.conf'), {
    code: 'E_CONFIG',
    message: /c\.conf:1: "lxc\.uts\.name web" is not "key = value"/,
  })
  assert.deepEqual(specFromLxc('lxc.net.0.type = macvlan', 'c').unsupported, [
    'lxc.net.0.type = macvlan (only veth)',
  ])
})

test('the exec fast path takes only what it understands', () => {
  assert.deepEqual(parseExecArgv(['web', '--', 'ps', '-ef']), {
    name: 'web',
    argv: ['ps', '-ef'],
    opts: {},
  })
  assert.deepEqual(parseExecArgv(['-it', '-w', '/tmp', '-e', 'A=1', 'web', 'sh']), {
    name: 'web',
    argv: ['sh'],
    opts: { tty: true, workdir: '/tmp', env: ['A=1'] },
  })
  assert.equal(parseExecArgv(['--help']), undefined)
  assert.equal(parseExecArgv(['web']), undefined)
  assert.equal(parseExecArgv(['--bogus', 'web', 'ps']), undefined)
})
