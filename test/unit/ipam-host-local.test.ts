import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs'
import { writeFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { ConfigError, ERROR_TABLE, NsdnError } from '../../src/errors.js'
import { HostLocal, type HostLocalConf } from '../../src/ipam/host-local.js'
import {
  DEFAULT_DATA_DIR,
  type IpamConf,
  ipamAdd,
  ipamCheck,
  ipamDel,
  parseIpamConf,
} from '../../src/ipam/index.js'
import { MemoryStore } from '../../src/ipam/store-memory.js'

function hostLocalConf(ipam: Record<string, unknown>): HostLocalConf {
  const conf = parseIpamConf({ type: 'host-local', ...ipam })
  assert.equal(conf.type, 'host-local')
  return conf as HostLocalConf
}

/** host-local over a memory store: 10.1.0.10 to 10.1.0.12, gateway 10.1.0.1. */
function small(extra: Record<string, unknown> = {}): { h: HostLocal; store: MemoryStore } {
  const store = new MemoryStore()
  const conf = hostLocalConf({
    ranges: [[{ subnet: '10.1.0.0/24', rangeStart: '10.1.0.10', rangeEnd: '10.1.0.12' }]],
    ...extra,
  })
  return { h: new HostLocal(conf, store), store }
}

async function addr(h: HostLocal, id: string, ifname = 'eth0'): Promise<string> {
  return (await h.allocate(id, ifname)).ips.map((ip) => ip.address).join(' ')
}

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'nsdn-ipam-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

test('allocation order: rangeStart first, then upwards, the gateway in the result', async () => {
  const { h } = small()
  const r = await h.allocate('ctr-a', 'eth0')
  assert.deepEqual(r, {
    ips: [{ address: '10.1.0.10/24', gateway: '10.1.0.1' }],
    routes: [],
    dns: {},
  })
  assert.equal(await addr(h, 'ctr-b'), '10.1.0.11/24')
  assert.equal(await addr(h, 'ctr-c'), '10.1.0.12/24')
})

test('the gateway is never handed out, even inside the range', async () => {
  const h = new HostLocal(
    hostLocalConf({ ranges: [[{ subnet: '10.2.0.0/29' }]] }),
    new MemoryStore(),
  )
  const got = []
  for (const id of ['a', 'b', 'c', 'd', 'e']) got.push(await addr(h, id))
  assert.deepEqual(got, ['10.2.0.2/29', '10.2.0.3/29', '10.2.0.4/29', '10.2.0.5/29', '10.2.0.6/29'])
  await assert.rejects(h.allocate('f', 'eth0'), { code: 'E_IPAM_EXHAUSTED' })
})

test('exhaustion: E_IPAM_EXHAUSTED naming the range set, with a hint; CNI code 110', async () => {
  const { h } = small()
  for (const id of ['a', 'b', 'c']) await h.allocate(id, 'eth0')
  await assert.rejects(h.allocate('d', 'eth0'), (err: unknown) => {
    assert.ok(err instanceof NsdnError)
    assert.equal(err.code, 'E_IPAM_EXHAUSTED')
    assert.equal(err.message, 'no free address left in range set 0 (10.1.0.10-10.1.0.12)')
    assert.match(err.hint ?? '', /release .*DEL.*widen the range; leases are kept in memory/)
    return true
  })
  assert.deepEqual(ERROR_TABLE.E_IPAM_EXHAUSTED, { cni: 110, exit: 1 })
})

test('round-robin: after a release, the next address comes after the last reserved', async () => {
  const { h, store } = small()
  assert.equal(await addr(h, 'a'), '10.1.0.10/24')
  assert.deepEqual(await h.release('a', 'eth0'), ['10.1.0.10'])
  assert.equal(await addr(h, 'b'), '10.1.0.11/24') // not .10 again at once
  assert.equal(store.lastReserved(0), '10.1.0.11')
  assert.equal(await addr(h, 'c'), '10.1.0.12/24')
  assert.equal(await addr(h, 'd'), '10.1.0.10/24') // wrapped around to the freed one
})

test('release makes the address available again; releasing twice is fine', async () => {
  const { h, store } = small()
  for (const id of ['a', 'b', 'c']) await h.allocate(id, 'eth0')
  assert.deepEqual(await h.release('b', 'eth0'), ['10.1.0.11'])
  assert.deepEqual(await h.release('b', 'eth0'), [])
  assert.deepEqual(await h.release('never', 'eth0'), [])
  assert.equal(await addr(h, 'd'), '10.1.0.11/24')
  assert.deepEqual(
    [...store.leases].map(([ip, o]) => `${ip}=${o.containerId}`),
    ['10.1.0.10=a', '10.1.0.12=c', '10.1.0.11=d'],
  )
})

test('one address per set and owner; another interface is another owner', async () => {
  const { h } = small()
  await h.allocate('a', 'eth0')
  await assert.rejects(h.allocate('a', 'eth0'), {
    code: 'E_EXISTS',
    message: 'container "a" interface "eth0" already holds 10.1.0.10',
  })
  assert.equal(await addr(h, 'a', 'eth1'), '10.1.0.11/24')
  assert.deepEqual(await h.release('a', 'eth0'), ['10.1.0.10'])
  assert.deepEqual((await h.get('a', 'eth1')).ips, [
    { address: '10.1.0.11/24', gateway: '10.1.0.1' },
  ])
})

test('requested addresses: taken as asked, refused with a clear error otherwise', async () => {
  const { h } = small()
  assert.deepEqual((await h.allocate('a', 'eth0', { requestedIps: ['10.1.0.12'] })).ips, [
    { address: '10.1.0.12/24', gateway: '10.1.0.1' },
  ])
  await assert.rejects(h.allocate('b', 'eth0', { requestedIps: ['10.1.0.12/24'] }), {
    code: 'E_EXISTS',
    message: 'requested address 10.1.0.12 is already taken',
  })
  const bad: [string, RegExp][] = [
    ['10.1.0.99', /10\.1\.0\.99 is in no range of this network/],
    ['10.1.0.11/16', /does not match subnet 10\.1\.0\.0\/24/],
    ['nope', /invalid IP address "nope"/],
  ]
  for (const [ip, msg] of bad)
    await assert.rejects(h.allocate('b', 'eth0', { requestedIps: [ip] }), (err: unknown) => {
      assert.ok(err instanceof ConfigError)
      assert.equal(err.where, 'requestedIps[0]')
      assert.match(err.message, msg)
      assert.ok(err.hint)
      return true
    })
  const gw = small({ ranges: [[{ subnet: '10.1.0.0/24', gateway: '10.1.0.5' }]] }).h
  await assert.rejects(gw.allocate('b', 'eth0', { requestedIps: ['10.1.0.5'] }), {
    message: /requested address 10\.1\.0\.5 is the gateway/,
  })
  await assert.rejects(h.allocate('b', 'eth0', { requestedIps: ['10.1.0.10', '10.1.0.11'] }), {
    message: /two requested addresses in range set 0/,
  })
})

const DUAL = {
  ranges: [
    [{ subnet: '10.1.0.0/24', rangeStart: '10.1.0.10', rangeEnd: '10.1.0.50' }],
    [{ subnet: 'fd00::/126' }], // fd00::1 is the gateway: fd00::2 and fd00::3 are free
  ],
  routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0', gw: 'fd00::1' }],
}

test('dual stack: one IPv4 and one IPv6 address, routes passed through', async () => {
  const store = new MemoryStore()
  const h = new HostLocal(hostLocalConf(DUAL), store)
  const r = await h.allocate('a', 'eth0')
  assert.deepEqual(r, {
    ips: [
      { address: '10.1.0.10/24', gateway: '10.1.0.1' },
      { address: 'fd00::2/126', gateway: 'fd00::1' },
    ],
    routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0', gw: 'fd00::1' }],
    dns: {},
  })
  assert.deepEqual(await h.get('a', 'eth0'), r)
  assert.deepEqual([store.lastReserved(0), store.lastReserved(1)], ['10.1.0.10', 'fd00::2'])
  assert.deepEqual((await h.release('a', 'eth0')).sort(), ['10.1.0.10', 'fd00::2'])
  await assert.rejects(h.get('a', 'eth0'), { code: 'E_NOT_FOUND', message: /holds no address/ })
})

test('all or nothing: when the IPv6 set is full, the IPv4 address is given back', async () => {
  const store = new MemoryStore()
  const h = new HostLocal(hostLocalConf(DUAL), store)
  await h.allocate('a', 'eth0')
  await h.allocate('b', 'eth0')
  await assert.rejects(h.allocate('c', 'eth0'), {
    code: 'E_IPAM_EXHAUSTED',
    message: 'no free address left in range set 1 (fd00::1-fd00::3)',
  })
  assert.deepEqual(store.getByOwner({ containerId: 'c', ifname: 'eth0' }), [])
  assert.equal(store.leases.size, 4)
})

test('the legacy single-range form is range set 0, before "ranges"', async () => {
  const conf = hostLocalConf({ subnet: '10.9.0.0/24', ranges: [[{ subnet: 'fd09::/64' }]] })
  assert.equal(conf.rangeSets.length, 2)
  const r = await new HostLocal(conf, new MemoryStore()).allocate('a', 'eth0')
  assert.deepEqual(
    r.ips.map((i) => i.address),
    ['10.9.0.2/24', 'fd09::2/64'],
  )
  assert.equal(conf.dataDir, DEFAULT_DATA_DIR)
  assert.equal(DEFAULT_DATA_DIR, '/var/lib/cni/networks')
})

test('bad configs: field path and hint', () => {
  const cases: [unknown, string, RegExp][] = [
    [{ type: 'dhcp' }, 'ipam.type', /unknown IPAM type "dhcp"/],
    [{}, 'ipam.type', /^ipam\.type: is missing$/],
    [null, 'ipam', /must be an object/],
    [{ type: 'host-local' }, 'ipam.ranges', /no address ranges/],
    [{ type: 'host-local', rangeStart: '10.0.0.5' }, 'ipam.rangeStart', /without subnet/],
    [{ type: 'host-local', subnet: '10.0.0.0/24', dataDir: 'rel' }, 'ipam.dataDir', /absolute/],
    [
      { type: 'host-local', ranges: [[{ subnet: '10.0.0.0/24' }], [{ subnet: '10.0.0.0/25' }]] },
      'ipam.ranges[1]',
      /range set overlaps ipam\.ranges\[0\]/,
    ],
    [
      { type: 'host-local', subnet: '10.0.0.0/24', ranges: [[{ subnet: '10.0.0.0/24' }]] },
      'ipam.ranges[0]',
      /overlaps ipam\.subnet/,
    ],
    [
      { type: 'host-local', ranges: [[{ subnet: '10.0.0.0/24', rangeStart: '10.0.1.1' }]] },
      'ipam.ranges[0][0].rangeStart',
      /outside subnet/,
    ],
    [
      { type: 'host-local', subnet: '10.0.0.0/24', routes: [{ dst: '0.0.0.0/0', gw: 'fd00::1' }] },
      'ipam.routes[0].gw',
      /not of the family/,
    ],
    [
      { type: 'host-local', subnet: '10.0.0.0/24', routes: [{}] },
      'ipam.routes[0].dst',
      /is missing/,
    ],
    [{ type: 'static' }, 'ipam.addresses', /no addresses/],
    [
      { type: 'static', addresses: [{ address: '10.0.0.1' }] },
      'ipam.addresses[0].address',
      /prefix/,
    ],
    [
      { type: 'static', addresses: [{ address: '10.0.0.1/24' }], dns: { nameservers: ['x'] } },
      'ipam.dns.nameservers[0]',
      /invalid IP/,
    ],
  ]
  for (const [json, where, msg] of cases)
    assert.throws(
      () => parseIpamConf(json),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError, String(err))
        assert.equal(err.where, where, JSON.stringify(json))
        assert.match(err.message, msg)
        assert.ok(err.hint, `no hint: ${err.message}`)
        return true
      },
    )
  assert.throws(() => parseIpamConf({ type: 'bogus' }), { hint: /"host-local".*"static"/ })
})

test('bad container ids and interface names are refused before the store is touched', async () => {
  const { h, store } = small()
  await assert.rejects(h.allocate('a\r\nb', 'eth0'), { code: 'E_CONFIG', where: 'containerId' })
  await assert.rejects(h.allocate('', 'eth0'), { code: 'E_CONFIG' })
  await assert.rejects(h.allocate('a', 'x'.repeat(16)), { code: 'E_CONFIG', where: 'ifname' })
  assert.equal(store.leases.size, 0)
})

test('resolvConf becomes the dns of the result', async (t) => {
  const dir = tempDir(t)
  const path = join(dir, 'resolv.conf')
  writeFileSync(
    path,
    '# c\nnameserver 10.0.0.53\nnameserver fd00::53\nsearch a.example b.example\n',
  )
  const { h } = small({ resolvConf: path })
  assert.deepEqual((await h.allocate('a', 'eth0')).dns, {
    nameservers: ['10.0.0.53', 'fd00::53'],
    search: ['a.example', 'b.example'],
  })
  const missing = small({ resolvConf: join(dir, 'nope') })
  await assert.rejects(missing.h.allocate('a', 'eth0'), { where: 'ipam.resolvConf' })
  assert.equal(missing.store.leases.size, 0)
})

test('static: hands out what the config lists; DEL is a no-op', async () => {
  const conf = parseIpamConf({
    type: 'static',
    addresses: [{ address: '10.0.0.1/24', gateway: '10.0.0.254' }, { address: 'fd00::1/64' }],
    routes: [{ dst: '0.0.0.0/0' }],
    dns: { nameservers: ['10.0.0.53'], domain: 'example' },
  })
  const args = { network: 'n', containerId: 'a', ifname: 'eth0' }
  const want = {
    ips: [{ address: '10.0.0.1/24', gateway: '10.0.0.254' }, { address: 'fd00::1/64' }],
    routes: [{ dst: '0.0.0.0/0' }],
    dns: { nameservers: ['10.0.0.53'], domain: 'example' },
  }
  assert.deepEqual(await ipamAdd(conf, args), want)
  assert.deepEqual(await ipamCheck(conf, args), want)
  await ipamDel(conf, args)
  await assert.rejects(ipamAdd(conf, { ...args, requestedIps: ['10.0.0.2/24'] }), {
    code: 'E_CONFIG',
  })
})

// File store: the reference plugin's layout under <dataDir>/<network>/.

function fileConf(dataDir: string): IpamConf {
  return parseIpamConf({ ...DUAL, type: 'host-local', dataDir })
}

test('file store: lease files "<id>\\r\\n<ifname>", last_reserved_ip.N, lock', async (t) => {
  const dataDir = tempDir(t)
  const conf = fileConf(dataDir)
  const args = { network: 'net1', containerId: 'ctr-a', ifname: 'eth0' }
  const r = await ipamAdd(conf, args)
  assert.deepEqual(
    r.ips.map((i) => i.address),
    ['10.1.0.10/24', 'fd00::2/126'],
  )
  const dir = join(dataDir, 'net1')
  assert.deepEqual(readdirSync(dir).sort(), [
    '10.1.0.10',
    'fd00::2',
    'last_reserved_ip.0',
    'last_reserved_ip.1',
    'lock',
  ])
  assert.equal(readFileSync(join(dir, '10.1.0.10'), 'utf8'), 'ctr-a\r\neth0')
  assert.equal(readFileSync(join(dir, 'fd00::2'), 'utf8'), 'ctr-a\r\neth0')
  assert.equal(readFileSync(join(dir, 'last_reserved_ip.0'), 'utf8'), '10.1.0.10')
  assert.equal(readFileSync(join(dir, 'last_reserved_ip.1'), 'utf8'), 'fd00::2')
  assert.equal(statSync(dir).mode & 0o777, 0o755)
  assert.deepEqual(await ipamCheck(conf, args), r)

  // A new store (as a new process would open) continues after last_reserved_ip.
  await ipamAdd(conf, { ...args, containerId: 'ctr-b' })
  await ipamDel(conf, args)
  assert.equal(existsSync(join(dir, '10.1.0.10')), false)
  assert.equal(existsSync(join(dir, 'fd00::2')), false)
  await ipamDel(conf, args) // twice is fine
  const c = await ipamAdd(conf, { ...args, containerId: 'ctr-c' })
  assert.deepEqual(
    c.ips.map((i) => i.address),
    ['10.1.0.12/24', 'fd00::2/126'], // v4 after ctr-b's .11; v6 wrapped around to the free ::2
  )
  await assert.rejects(ipamCheck(conf, args), { code: 'E_NOT_FOUND' })
  assert.deepEqual(
    readdirSync(dir)
      .filter((f) => isIP(f))
      .sort(),
    ['10.1.0.11', '10.1.0.12', 'fd00::2', 'fd00::3'],
  )
})

test('file store: leases of others are skipped; id-only legacy leases are released', async (t) => {
  const dataDir = tempDir(t)
  const conf = fileConf(dataDir)
  const dir = join(dataDir, 'net1')
  await ipamDel(conf, { network: 'net1', containerId: 'x', ifname: 'eth0' }) // creates the dir
  writeFileSync(join(dir, '10.1.0.10'), 'other\r\neth0')
  writeFileSync(join(dir, '10.1.0.11'), 'old') // written before leases named the interface
  const r = await ipamAdd(conf, { network: 'net1', containerId: 'new', ifname: 'eth0' })
  assert.equal(r.ips[0]?.address, '10.1.0.12/24')
  await ipamDel(conf, { network: 'net1', containerId: 'old', ifname: 'eth0' })
  assert.equal(existsSync(join(dir, '10.1.0.11')), false)
  assert.equal(readFileSync(join(dir, '10.1.0.10'), 'utf8'), 'other\r\neth0')
})

test('file store: a bad network name never becomes a path', async (t) => {
  const dataDir = tempDir(t)
  const args = { network: '../escape', containerId: 'a', ifname: 'eth0' }
  await assert.rejects(ipamAdd(fileConf(dataDir), args), { code: 'E_CONFIG', where: 'network' })
  assert.deepEqual(readdirSync(dataDir), [])
})

// The reference plugin (Debian's containernetworking-plugins), on the same data directory.
const REF = '/usr/lib/cni/host-local'

function refRun(cmd: string, dataDir: string, containerId: string): Record<string, unknown> {
  const r = spawnSync(REF, {
    input: JSON.stringify({
      cniVersion: '1.0.0',
      name: 'net1',
      ipam: { ...DUAL, type: 'host-local', dataDir },
    }),
    env: {
      CNI_COMMAND: cmd,
      CNI_CONTAINERID: containerId,
      CNI_NETNS: '/nonexistent',
      CNI_IFNAME: 'eth0',
      CNI_PATH: '/usr/lib/cni',
    },
    encoding: 'utf8',
  })
  assert.equal(r.status, 0, `${cmd}: ${r.stdout} ${r.stderr}`)
  return r.stdout ? (JSON.parse(r.stdout) as Record<string, unknown>) : {}
}

test(
  'the reference host-local plugin and nsdn share a data directory',
  {
    skip: !existsSync(REF) && `${REF} is not installed`,
  },
  async (t) => {
    const dataDir = tempDir(t)
    const conf = fileConf(dataDir)
    const ours = { network: 'net1', containerId: 'ours', ifname: 'eth0' }
    await ipamAdd(conf, ours)
    // The reference plugin reads our leases and last_reserved_ip and continues after them...
    const theirs = refRun('ADD', dataDir, 'theirs') as { ips: { address: string }[] }
    assert.deepEqual(
      theirs.ips.map((i) => i.address),
      ['10.1.0.11/24', 'fd00::3/126'],
    )
    // ...we read theirs...
    const check = await ipamCheck(conf, { ...ours, containerId: 'theirs' })
    assert.deepEqual(
      check.ips.map((i) => i.address),
      ['10.1.0.11/24', 'fd00::3/126'],
    )
    await assert.rejects(ipamAdd(conf, { ...ours, containerId: 'third' }), {
      code: 'E_IPAM_EXHAUSTED',
    })
    // ...and each side releases the other's leases.
    await ipamDel(conf, { ...ours, containerId: 'theirs' })
    refRun('DEL', dataDir, 'ours')
    assert.deepEqual(
      readdirSync(join(dataDir, 'net1')).filter((f) => isIP(f)),
      [],
    )
  },
)
