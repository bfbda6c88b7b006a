import { sandboxThisFile } from '../helpers/sandbox.js'
sandboxThisFile()

import assert from 'node:assert/strict'
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import type { Readable } from 'node:stream'
import { after, before, test } from 'node:test'
import type { NsdnError } from '../../src/errors.js'
import { deploy, labFrom } from '../../src/lab/deploy.js'
import { destroy } from '../../src/lab/destroy.js'
import { Rtnl } from '../../src/netlink/rtnl.js'
import { explainLab, runVerify, setLinkRate } from '../../src/web/actions.js'
import { capture } from '../../src/web/capture.js'
import { type LiveChange, type LiveIf, type LiveLab, openLive } from '../../src/web/live.js'
import { type Terminal, openTerminal } from '../../src/web/terminal.js'
import { eventually, ipJson, netnsNames, ping, strayLinks } from '../helpers/kernel.js'

const SCENARIOS = path.resolve(__dirname, '../../../scenarios')
const LAB = 'brpair'

let live: LiveLab
/** Every change delivered so far, in order. */
const changes: LiveChange[] = []
/** Deliveries: each one batch. */
let batches = 0

before(async () => {
  await deploy(labFrom(path.join(SCENARIOS, '03-bridge-pair.yaml')))
  live = await openLive(LAB, { rateMs: 200 })
  live.onChange((b) => {
    batches++
    changes.push(...b)
  })
})

after(async () => {
  await live?.close()
  await destroy(LAB)
  Rtnl.closeAll()
  assert.ok(await eventually(() => strayLinks().length === 0), `links left: ${strayLinks()}`)
  assert.deepEqual(netnsNames(), [])
})

interface IpAddrLink {
  ifname: string
  ifindex: number
  flags: string[]
  mtu: number
  address?: string
  master?: string
  addr_info: { local: string; prefixlen: number }[]
}

/** `tc [-n NS] -j ARGS...` parsed. */
function tcJson<T = { kind: string; options?: { rate?: number } }>(
  args: string[],
  ns?: string,
): T[] {
  const out = execFileSync('tc', [...(ns ? ['-n', ns] : []), '-j', ...args], { encoding: 'utf8' })
  return (out.trim() ? JSON.parse(out) : []) as T[]
}

/** A login shell or tcpdump starting on a loaded machine. */
const SLOW = 15_000

const liveIfs = (ns: string): LiveIf[] => live.snapshot().ifs.filter((i) => i.ns === ns)
const find = (ns: string, name: string): LiveIf | undefined =>
  live.snapshot().ifs.find((i) => i.ns === ns && i.name === name)
/** The last 'if' change seen for ns/name. */
const lastIf = (ns: string, name: string): LiveIf | undefined =>
  changes
    .flatMap((c) => (c.type === 'if' && c.if.ns === ns && c.if.name === name ? [c.if] : []))
    .at(-1)

test('the snapshot is what ip -j shows: interfaces, flags, MTU, MAC, master, addresses', () => {
  const snap = live.snapshot()
  assert.deepEqual(
    snap.topo.nodes.map((n) => [n.name, n.kind, n.ns]),
    [
      ['h1', 'host', 'brpair-h1'],
      ['h2', 'host', 'brpair-h2'],
    ],
  )
  assert.deepEqual(snap.topo.switches, [{ name: 'br0', kind: 'bridge', ns: '', dev: 'brpair-br0' }])
  assert.equal(snap.topo.links.length, 2)
  assert.equal(snap.topo.checks.length, 2)
  for (const ns of ['brpair-h1', 'brpair-h2', '']) {
    let links = ipJson<IpAddrLink[]>(['addr', 'show'], ns || undefined)
    // in the root namespace, only the lab's devices
    if (ns === '') links = links.filter((l) => l.ifname.startsWith('brpair-'))
    assert.ok(links.length >= (ns ? 2 : 3), `${ns}: ${links.map((l) => l.ifname)}`)
    const mine = liveIfs(ns)
    assert.deepEqual(
      mine.map((i) => i.name).sort(),
      links.map((l) => l.ifname).sort(),
      `interfaces of ${ns || 'the root namespace'}`,
    )
    for (const l of links) {
      const i = mine.find((x) => x.name === l.ifname)!
      assert.equal(i.ifindex, l.ifindex)
      assert.equal(i.up, l.flags.includes('UP'), `${l.ifname} up`)
      assert.equal(i.running, l.flags.includes('LOWER_UP'), `${l.ifname} running`)
      assert.equal(i.mtu, l.mtu)
      if (l.address && l.ifname !== 'lo') assert.equal(i.mac, l.address)
      assert.equal(i.master, l.master)
      assert.deepEqual(
        [...i.addrs].sort(),
        l.addr_info.map((a) => `${a.local}/${a.prefixlen}`).sort(),
        `addresses of ${l.ifname}`,
      )
    }
  }
  const h1 = find('brpair-h1', 'eth0')!
  assert.equal(h1.kind, 'veth')
  assert.ok(h1.addrs.includes('10.10.0.1/24'))
  // routes: the kernel's connected route of the subnet
  assert.ok(
    snap.routes.some((r) => r.ns === 'brpair-h1' && r.dst === '10.10.0.0/24' && r.dev === 'eth0'),
    JSON.stringify(snap.routes.filter((r) => r.ns === 'brpair-h1')),
  )
})

test('a link set down with plain ip arrives as an if change with up=false', async () => {
  execFileSync('ip', ['-n', 'brpair-h2', 'link', 'set', 'eth0', 'down'])
  assert.ok(
    await eventually(() => lastIf('brpair-h2', 'eth0')?.up === false),
    'an if change with up=false for brpair-h2 eth0',
  )
  assert.equal(find('brpair-h2', 'eth0')?.up, false)
  // its peer in the root namespace lost its carrier
  const peer = find('', 'brpair-h2-eth0')!
  assert.ok(await eventually(() => find('', 'brpair-h2-eth0')?.running === false), 'peer down')
  assert.equal(peer.master, 'brpair-br0')
  // the kernel drops the subnet's route with the link, without a notification: it goes all the same
  const connected = (): boolean =>
    live.snapshot().routes.some((r) => r.ns === 'brpair-h2' && r.dst === '10.10.0.0/24')
  assert.ok(await eventually(() => !connected()), 'the connected route gone while down')
  execFileSync('ip', ['-n', 'brpair-h2', 'link', 'set', 'eth0', 'up'])
  assert.ok(await eventually(() => lastIf('brpair-h2', 'eth0')?.up === true), 'up again')
  assert.ok(await eventually(connected), 'the connected route back')
})

test('an address and a route added by hand show', async () => {
  execFileSync('ip', ['-n', 'brpair-h1', 'addr', 'add', '10.99.0.1/24', 'dev', 'eth0'])
  assert.ok(
    await eventually(() => !!lastIf('brpair-h1', 'eth0')?.addrs.includes('10.99.0.1/24')),
    'the new address in an if change',
  )
  execFileSync('ip', ['-n', 'brpair-h1', 'route', 'add', '10.123.0.0/16', 'via', '10.99.0.254'])
  const routed = (): boolean =>
    changes.some(
      (c) =>
        c.type === 'routes' &&
        c.ns === 'brpair-h1' &&
        c.routes.some((r) => r.dst === '10.123.0.0/16' && r.via === '10.99.0.254'),
    )
  assert.ok(await eventually(routed), 'a routes change with the new route')
  execFileSync('ip', ['-n', 'brpair-h1', 'route', 'del', '10.123.0.0/16'])
  assert.ok(
    await eventually(() => live.snapshot().routes.every((r) => r.dst !== '10.123.0.0/16')),
    'the route gone again',
  )
  execFileSync('ip', ['-n', 'brpair-h1', 'addr', 'del', '10.99.0.1/24', 'dev', 'eth0'])
  assert.ok(
    await eventually(() => lastIf('brpair-h1', 'eth0')?.addrs.includes('10.99.0.1/24') === false),
    'the address gone again',
  )
})

test('ping traffic makes the counters and rates grow', async () => {
  const before = find('brpair-h1', 'eth0')!.stats
  const flood = spawnSync(
    'ip',
    [
      'netns',
      'exec',
      'brpair-h1',
      'ping',
      '-n',
      '-q',
      '-c',
      '30',
      '-i',
      '0.02',
      '-s',
      '1000',
      '10.10.0.2',
    ],
    { stdio: 'ignore' },
  )
  assert.equal(flood.status, 0, 'h1 pings h2')
  assert.ok(
    await eventually(() => find('brpair-h1', 'eth0')!.stats.txPackets >= before.txPackets + 30),
    'tx packets counted',
  )
  const s = find('brpair-h1', 'eth0')!.stats
  assert.ok(s.txBytes >= before.txBytes + 30 * 1000)
  assert.ok(s.rxPackets >= before.rxPackets + 30)
  // rates came in a rates change, with a non-zero tx rate for h1's eth0 while it sent
  const rated = changes.some(
    (c) =>
      c.type === 'rates' &&
      c.rates.some(
        (r) =>
          r.ns === 'brpair-h1' && r.rates.txBps > 0 && r.rates.txPps > 0 && r.stats.txBytes > 0,
      ),
  )
  assert.ok(rated, 'a rates change for brpair-h1 eth0')
  // cross-check the counters with ip -s
  const [ip] = ipJson<{ stats64: { tx: { packets: number } } }[]>(
    ['-s', 'link', 'show', 'eth0'],
    'brpair-h1',
  )
  assert.ok(ip!.stats64.tx.packets >= s.txPackets)
  assert.ok(ping('10.10.0.2', 'brpair-h1'))
})

test('changes come in batches, not one call per change', async () => {
  const n0 = batches
  const c0 = changes.length
  for (let i = 0; i < 20; i++)
    execFileSync('ip', ['-n', 'brpair-h1', 'addr', 'add', `10.98.0.${i + 1}/32`, 'dev', 'eth0'])
  assert.ok(
    await eventually(() => lastIf('brpair-h1', 'eth0')?.addrs.includes('10.98.0.20/32') === true),
  )
  assert.ok(changes.length > c0)
  assert.ok(batches - n0 < 20, `${batches - n0} batches for 20 addresses`)
  execFileSync('ip', ['-n', 'brpair-h1', 'addr', 'flush', 'to', '10.98.0.0/24'])
})

/** Processes of this sandbox (its own PID namespace) running one of these programs. */
function running(...names: string[]): string[] {
  const out: string[] = []
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const comm = fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim()
      // a zombie has ended: the sandbox's PID 1 (node) does not reap the orphans it inherits
      const state = /^\d+ \(.*\) (\S)/.exec(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1]
      if (names.includes(comm) && state !== 'Z') out.push(`${pid} ${comm}`)
    } catch {
      // ended meanwhile
    }
  }
  return out
}

/** Run a terminal until its shell exits; its whole output. */
function session(t: Terminal): Promise<{ out: string; code: number | null }> {
  let out = ''
  t.onData((d) => (out += d.toString()))
  return new Promise((resolve) => t.onExit((code) => resolve({ out, code })))
}

test('a terminal runs a login shell on a pty in the node namespace', async () => {
  const t = openTerminal({ ns: 'brpair-h1' }, { cols: 100, rows: 30 })
  const done = session(t)
  let seen = ''
  t.onData((d) => (seen += d.toString()))
  t.write('readlink /proc/self/ns/net; ip -br addr; stty size; tty; ls /sys/class/net\n')
  assert.ok(await eventually(() => /\/dev\/pts\/\d+/.test(seen), SLOW), seen)
  t.resize(120, 40)
  t.write('stty size; exit 3\n')
  const { out, code } = await done
  assert.equal(code, 3, out)
  const ino = fs.statSync('/run/netns/brpair-h1').ino
  assert.match(out, new RegExp(`net:\\[${ino}\\]`), 'the shell is in brpair-h1')
  assert.doesNotMatch(out, new RegExp(`net:\\[${fs.statSync('/proc/self/ns/net').ino}\\]`))
  assert.match(out, /eth0@\S+\s+UP\s+10\.10\.0\.1\/24/, "h1's address in ip -br addr")
  assert.match(out, /^30 100\r?$/m, 'the first size')
  assert.match(out, /^40 120\r?$/m, 'the size after resize')
  assert.match(out, /^\/dev\/pts\/\d+\r?$/m, 'a real pty')
  // the namespace's own /sys: eth0 and lo, not the root's devices
  assert.doesNotMatch(out, /brpair-br0/)
  // the node's own history file, not the user's
  assert.match(fs.readFileSync('/run/nsdn/web/history/brpair-h1', 'utf8'), /^stty size; exit 3$/m)
  assert.deepEqual(running('bash', 'sh', 'nsdn-init'), [])
})

test('a terminal in the root namespace, killed: the shell goes', async () => {
  const t = openTerminal({ ns: '' }, { cols: 80, rows: 24 })
  const done = session(t)
  t.write('readlink /proc/self/ns/net\n')
  const self = `net:[${fs.statSync('/proc/self/ns/net').ino}]`
  let seen = ''
  t.onData((d) => (seen += d.toString()))
  assert.ok(await eventually(() => seen.includes(self), SLOW), seen)
  t.kill()
  // SIGHUP, or the end of input that comes with it: either ends the shell
  const { code } = await done
  assert.equal(typeof code, 'number')
  assert.ok(
    await eventually(() => running('bash', 'sh', 'nsdn-init').length === 0),
    `left: ${running('bash', 'sh', 'nsdn-init')} ${execFileSync('ps', ['-eo', 'pid,ppid,stat,wchan:20,comm'], { encoding: 'utf8' })}`,
  )
})

test('a terminal of a namespace that does not exist is refused', () => {
  assert.throws(() => openTerminal({ ns: 'brpair-nope' }, { cols: 80, rows: 24 }), {
    code: 'E_NETNS',
  })
  assert.throws(() => openTerminal({ ns: '../x' }, { cols: 80, rows: 24 }), { code: 'E_CONFIG' })
  assert.throws(() => openTerminal({ ns: 'brpair-h1' }, { cols: 0, rows: 24 }), {
    code: 'E_CONFIG',
  })
})

/** The records of a pcap file (classic format, microseconds, little or big endian). */
function parsePcap(buf: Buffer): { linktype: number; frames: Buffer[] } {
  assert.ok(buf.length >= 24, `a pcap header (got ${buf.length} bytes)`)
  const magic = buf.readUInt32LE(0)
  assert.ok(magic === 0xa1b2c3d4 || magic === 0xd4c3b2a1, `pcap magic, got ${magic.toString(16)}`)
  const le = magic === 0xa1b2c3d4
  const u32 = (o: number): number => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o))
  const frames: Buffer[] = []
  let off = 24
  while (off + 16 <= buf.length) {
    const incl = u32(off + 8)
    frames.push(buf.subarray(off + 16, off + 16 + incl))
    off += 16 + incl
  }
  assert.equal(off, buf.length, 'whole records')
  return { linktype: u32(20), frames }
}

const isIcmp = (f: Buffer): boolean => f.length > 34 && f.readUInt16BE(12) === 0x0800 && f[23] === 1

function drain(s: Readable): Promise<Buffer> {
  const parts: Buffer[] = []
  return new Promise((resolve, reject) => {
    s.on('data', (d: Buffer) => parts.push(d))
    s.on('end', () => resolve(Buffer.concat(parts)))
    s.on('error', reject)
  })
}

test('a capture of a link is a pcap with the ICMP packets of a ping', async () => {
  const s = capture('brpair-h1', 'eth0', { seconds: 20, maxPackets: 4 })
  const got = drain(s)
  // tcpdump needs a moment to open the device: ping until the capture has its packets
  const pinger = spawn(
    'ip',
    ['netns', 'exec', 'brpair-h1', 'ping', '-n', '-i', '0.2', '10.10.0.2'],
    {
      stdio: 'ignore',
    },
  )
  let pcap: Buffer
  try {
    pcap = await got
  } finally {
    pinger.kill()
  }
  const { linktype, frames } = parsePcap(pcap)
  assert.equal(linktype, 1, 'Ethernet')
  assert.equal(frames.length, 4, 'maxPackets')
  assert.ok(frames.filter(isIcmp).length >= 1, 'ICMP packets')
  assert.ok(await eventually(() => running('tcpdump').length === 0), 'tcpdump ended')
})

test('a capture ends after its seconds, and when its reader goes', async () => {
  const quiet = parsePcap(await drain(capture('brpair-h2', 'lo', { seconds: 1, maxPackets: 10 })))
  assert.equal(quiet.frames.length, 0)
  const s = capture('', 'brpair-br0', { seconds: 60, maxPackets: 1000 })
  await new Promise((r) => s.once('readable', r))
  assert.equal(running('tcpdump').length, 1)
  s.destroy()
  assert.ok(await eventually(() => running('tcpdump').length === 0), 'tcpdump stopped')
})

test('a capture of a device that is not there fails with what tcpdump said', async () => {
  await assert.rejects(drain(capture('brpair-h1', 'eth9', { seconds: 5, maxPackets: 1 })), (e) => {
    assert.equal((e as NsdnError).code, 'E_EXEC')
    assert.match((e as Error).message, /eth9/)
    return true
  })
  assert.throws(() => capture('brpair-h1', 'a b', { seconds: 5, maxPackets: 1 }), {
    code: 'E_CONFIG',
  })
  assert.throws(() => capture('brpair-h1', 'eth0', { seconds: 0, maxPackets: 1 }), {
    code: 'E_CONFIG',
  })
  assert.throws(() => capture('nope', 'eth0', { seconds: 1, maxPackets: 1 }), { code: 'E_NETNS' })
})

test('setLinkRate puts a tbf on both ends (tc -j agrees, the live view shows it), null removes it', async () => {
  const tbf = (
    ns: string | undefined,
    dev: string,
  ): { kind: string; options?: { rate?: number } } | undefined =>
    tcJson(['qdisc', 'show', 'dev', dev, 'root'], ns).find((q) => q.kind === 'tbf')
  await setLinkRate(LAB, 'link0', '5mbit')
  assert.equal(tbf('brpair-h1', 'eth0')?.options?.rate, 625_000, 'tc: 5 Mbit/s in bytes')
  assert.ok(tbf(undefined, 'brpair-h1-eth0'), 'the switch end too')
  assert.ok(
    await eventually(
      () =>
        find('brpair-h1', 'eth0')?.rate === '5mbit' && find('', 'brpair-h1-eth0')?.rate === '5mbit',
    ),
    'the live view shows the rate on both ends',
  )
  await setLinkRate(LAB, 'link0', '2mbit') // replaces it
  assert.equal(tbf('brpair-h1', 'eth0')?.options?.rate, 250_000)
  await setLinkRate(LAB, 'link0', null)
  assert.equal(tbf('brpair-h1', 'eth0'), undefined)
  assert.equal(tbf(undefined, 'brpair-h1-eth0'), undefined)
  assert.ok(await eventually(() => find('brpair-h1', 'eth0')?.rate === undefined), 'rate gone')
  await setLinkRate(LAB, 'link0', null) // none to remove: no error
  await assert.rejects(setLinkRate(LAB, 'link7', '1mbit'), { code: 'E_NOT_FOUND' })
  await assert.rejects(setLinkRate(LAB, 'link0', 'fast'), { code: 'E_CONFIG' })
  await assert.rejects(setLinkRate(LAB, 'link0', '0mbit'), { code: 'E_CONFIG' })
  await assert.rejects(setLinkRate('nolab', 'link0', '1mbit'), { code: 'E_NOT_FOUND' })
})

test('runVerify runs the lab checks; explainLab gives the script that builds it', async () => {
  const results = await runVerify(LAB)
  assert.deepEqual(
    results.map((r) => [r.ok, r.detail]),
    [
      [true, 'answered'],
      [true, 'answered'],
    ],
  )
  const script = await explainLab(LAB)
  assert.match(script, /^ip netns add brpair-h1$/m)
  assert.match(script, /^ip link add brpair-br0 group \d+ up type bridge$/m)
})

/** Sockets among this process's open files. */
const sockets = (): number =>
  fs.readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return fs.readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:')
    } catch {
      return false
    }
  }).length

test('close releases every socket of a live view', async () => {
  const before = sockets()
  const other = await openLive(LAB)
  // two netlink sockets per namespace: the root one and the two hosts'
  assert.equal(sockets() - before, 6)
  let calls = 0
  other.onChange(() => calls++)
  await other.close()
  assert.equal(sockets(), before)
  // nothing is delivered after close
  const atClose = calls
  execFileSync('ip', ['-n', 'brpair-h1', 'link', 'set', 'lo', 'mtu', '60000'])
  assert.ok(
    await eventually(() => lastIf('brpair-h1', 'lo')?.mtu === 60000),
    'the open view saw it',
  )
  assert.equal(calls, atClose)
  assert.deepEqual(running('tcpdump', 'bash', 'sh', 'nsdn-init'), [])
  await assert.rejects(openLive('nolab'), { code: 'E_NOT_FOUND' })
})

/** ovsdb-client processes that are children of this one. */
function ourOvsdbClients(): string[] {
  return running('ovsdb-client').filter((r) => {
    const stat = fs.readFileSync(`/proc/${r.split(' ')[0]}/stat`, 'utf8')
    return /^\d+ \(.*\) \S (\d+)/.exec(stat)?.[1] === String(process.pid)
  })
}

test('OVS ports show their bridge and VLAN tag, and a tag changed by hand arrives live', async () => {
  await deploy(labFrom(path.join(SCENARIOS, '02-ovs-vlan.yaml')))
  // the safety poll far beyond the test: the change can only come through the OVSDB monitor
  const v = await openLive('vlan', { rateMs: 500, ovsPollMs: 600_000 })
  const seen: LiveIf[] = []
  v.onChange((b) => seen.push(...b.flatMap((c) => (c.type === 'if' ? [c.if] : []))))
  try {
    assert.equal(ourOvsdbClients().length, 1, 'one ovsdb-client monitor while the view is open')
    const port = (name: string): LiveIf | undefined =>
      v.snapshot().ifs.find((i) => i.ns === '' && i.name === name)
    assert.deepEqual(port('vlan-veth-ns1')?.ovs, { bridge: 'vlan-OVS-1', tag: 100 })
    assert.deepEqual(port('vlan-veth-ns2')?.ovs, { bridge: 'vlan-OVS-1', tag: 200 })
    assert.deepEqual(
      v.snapshot().topo.links.map((k) => [k.a.node, k.b.node, k.b.vlan]),
      [
        ['ns1', 'OVS-1', 100],
        ['ns2', 'OVS-1', 200],
        ['ns3', 'OVS-1', 100],
      ],
    )
    execFileSync('ovs-vsctl', [
      '--db=unix:/run/nsdn/ovs/db.sock',
      'set',
      'Port',
      'vlan-veth-ns2',
      'tag=300',
    ])
    assert.ok(
      await eventually(
        () => seen.some((i) => i.name === 'vlan-veth-ns2' && i.ovs?.tag === 300),
        5_000,
      ),
      'the new tag, as an if change triggered by the OVSDB monitor',
    )
    assert.equal(port('vlan-veth-ns2')?.ovs?.tag, 300)
    execFileSync('ovs-vsctl', [
      '--db=unix:/run/nsdn/ovs/db.sock',
      'set',
      'Port',
      'vlan-veth-ns3',
      'trunks=100,200',
    ])
    assert.ok(
      await eventually(() => port('vlan-veth-ns3')?.ovs?.trunks?.join() === '100,200', 5_000),
      'trunks set by hand, live too',
    )
  } finally {
    await v.close()
    await destroy('vlan')
  }
  assert.deepEqual(ourOvsdbClients(), [], 'no ovsdb-client left after close')
})

test('ovsPollMs out of range is refused', async () => {
  await assert.rejects(openLive(LAB, { ovsPollMs: 10 }), { code: 'E_CONFIG' })
})

/** Drops counted by the kernel on the netlink sockets of namespace ns (/proc/net/netlink). */
function netlinkDrops(ns: string): number {
  const out = execFileSync('ip', ['netns', 'exec', ns, 'cat', '/proc/net/netlink'], {
    encoding: 'utf8',
  })
  const [head, ...rows] = out.trim().split('\n')
  const col = head!.trim().split(/\s+/).indexOf('Drops')
  return rows.reduce((n, r) => n + Number(r.trim().split(/\s+/)[col] ?? 0), 0)
}

test('notifications lost to a full socket buffer: no crash, the namespace is read again', async () => {
  const small = await openLive(LAB, { rateMs: 200, recvBufferBytes: 2048 })
  const veths = Array.from({ length: 40 }, (_, i) => `link add fa${i} type veth peer name fb${i}`)
  try {
    const drops = netlinkDrops('brpair-h2')
    execFileSync('ip', ['-n', 'brpair-h2', '-batch', '-'], { input: veths.join('\n') + '\n' })
    assert.ok(netlinkDrops('brpair-h2') > drops, 'the kernel dropped notifications')
    const count = (): number =>
      small.snapshot().ifs.filter((i) => i.ns === 'brpair-h2' && /^f[ab]\d+$/.test(i.name)).length
    assert.ok(await eventually(() => count() === 80), `${count()} of the 80 new links`)
  } finally {
    await small.close()
    execFileSync('ip', ['-n', 'brpair-h2', '-batch', '-'], {
      input: veths.map((_, i) => `link del fa${i}`).join('\n') + '\n',
    })
  }
})

test('a lab destroyed while watched: its interfaces go, its sockets close, nothing is pinned', async () => {
  const before = sockets()
  await deploy(labFrom(path.join(SCENARIOS, '01-netns-veth.yaml')))
  const v = await openLive('netns', { rateMs: 200 })
  const gone: string[] = []
  v.onChange((b) => {
    for (const c of b) if (c.type === 'if-gone') gone.push(`${c.ns}:${c.name}`)
  })
  assert.deepEqual(
    v
      .snapshot()
      .ifs.map((i) => `${i.ns}:${i.name}`)
      .sort(),
    ['netns-ns1:lo', 'netns-ns1:veth1', ':netns-veth0'].sort(),
  )
  await destroy('netns')
  assert.ok(await eventually(() => v.snapshot().ifs.length === 0), 'no interface left')
  // delivered in the next batch
  assert.ok(await eventually(() => gone.length === 3), gone.join())
  assert.deepEqual(gone.sort(), ['netns-ns1:lo', 'netns-ns1:veth1', ':netns-veth0'].sort())
  // the namespace's sockets closed by the view itself (else they pin it, and its veth)
  assert.ok(await eventually(() => sockets() - before === 2), `${sockets() - before} sockets`)
  assert.ok(
    await eventually(() => !strayLinks().includes('netns-veth0')),
    'the veth went with the namespace',
  )
  await v.close()
  assert.equal(sockets(), before)
})
