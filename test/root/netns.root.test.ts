import { sandboxThisFile } from '../helpers/sandbox.js'
sandboxThisFile()

import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { after, test } from 'node:test'
import { NetNs, runInNetnsSync, spawnSyncInNetns } from '../../src/netns/netns.js'
import { Rtnl } from '../../src/netlink/rtnl.js'
import { linkAddVeth, linkList, linkSetUp } from '../../src/netlink/link.js'
import { addrAdd } from '../../src/netlink/addr.js'
import {
  eventually,
  ipAddrs,
  ipJson,
  netnsNames,
  ping,
  procs,
  strayLinks,
} from '../helpers/kernel.js'
import fs from 'node:fs'

after(() => Rtnl.closeAll())

test('nsdn namespaces are iproute2 namespaces, both ways', () => {
  const ns = NetNs.create('nsdn-t-a')
  ns.close()
  assert.deepEqual(
    ipJson<{ name: string }[]>(['netns', 'list']).map((n) => n.name),
    ['nsdn-t-a'],
  )
  execFileSync('ip', ['netns', 'add', 'nsdn-t-b'])
  assert.deepEqual(NetNs.list(), ['nsdn-t-a', 'nsdn-t-b'])
  const b = NetNs.open('nsdn-t-b')
  const r = spawnSyncInNetns(b, ['ip', '-j', 'link', 'show'], { encoding: 'utf8' })
  assert.deepEqual(
    JSON.parse(r.stdout as string).map((l: { ifname: string }) => l.ifname),
    ['lo'],
  )
  b.close()
  NetNs.delete('nsdn-t-a')
  NetNs.delete('nsdn-t-b')
  assert.deepEqual(netnsNames(), [])
})

test('bad names and unknown namespaces are refused before anything is created', () => {
  assert.throws(() => NetNs.create('../etc'), { code: 'E_CONFIG' })
  assert.throws(() => NetNs.create('a/b'), { code: 'E_CONFIG' })
  assert.throws(() => NetNs.open('nsdn-t-missing'), { code: 'E_NETNS' })
  assert.throws(() => NetNs.delete('nsdn-t-missing'), { code: 'E_NOT_FOUND' })
  NetNs.create('nsdn-t-dup').close()
  assert.throws(() => NetNs.create('nsdn-t-dup'), { code: 'E_EXISTS' })
  NetNs.delete('nsdn-t-dup')
  assert.deepEqual(netnsNames(), [])
})

test('a synchronous window runs inside the namespace and returns to ours', () => {
  const ns = NetNs.create('nsdn-t-w')
  const inside = runInNetnsSync(ns, () => fs.readlinkSync('/proc/thread-self/ns/net'))
  const here = fs.readlinkSync('/proc/thread-self/ns/net')
  assert.notEqual(inside, here)
  assert.equal(here, fs.readlinkSync(`/proc/self/fd/${NetNs.current().fd}`))
  assert.throws(() => runInNetnsSync(ns, () => Promise.resolve(1)), { code: 'E_INTERNAL' })
  assert.equal(fs.readlinkSync('/proc/thread-self/ns/net'), here)
  ns.close()
  NetNs.delete('nsdn-t-w')
})

test('seed walkthrough: a netns joined to the default namespace by a veth pair, ping both ways', async () => {
  const ns = NetNs.create('nsdn-t-v')
  const root = Rtnl.for()
  await linkSetUp(root, 'lo')
  await linkAddVeth(root, 'nsdn-t-host', 'eth1', { peerNs: ns, up: true })
  await addrAdd(root, '10.200.0.1/24', 'nsdn-t-host')
  const h = Rtnl.for(ns)
  await linkSetUp(h, 'lo')
  await linkSetUp(h, 'eth1')
  await addrAdd(h, '10.200.0.2/24', 'eth1')
  assert.ok(ipAddrs('nsdn-t-v').includes('eth1 10.200.0.2/24'))
  assert.ok(ipAddrs().includes('nsdn-t-host 10.200.0.1/24'))
  assert.ok(ping('10.200.0.2'), 'root -> netns')
  assert.ok(ping('10.200.0.1', 'nsdn-t-v'), 'netns -> root')
  NetNs.delete('nsdn-t-v')
  ns.close()
  assert.ok(await eventually(() => strayLinks().length === 0), `left: ${strayLinks()}`)
  assert.deepEqual(netnsNames(), [])
})

test('a netlink handle keeps no fd of the caller: callers open and close NetNs freely', async () => {
  const a = NetNs.create('nsdn-t-own')
  const h = Rtnl.for(a)
  const b = NetNs.open('nsdn-t-own')
  assert.equal(Rtnl.for(b), h, 'one cached handle per namespace')
  // The second caller's fd is still its own and still the namespace.
  assert.equal(
    runInNetnsSync(b, () => fs.statSync('/proc/thread-self/ns/net').ino),
    fs.fstatSync(a.fd).ino,
  )
  a.close()
  b.close()
  // The handle works on: its socket pins the namespace by itself.
  await linkSetUp(h, 'lo')
  assert.ok(
    ipJson<{ flags: string[] }[]>(['link', 'show', 'lo'], 'nsdn-t-own')[0]?.flags.includes('UP'),
  )
  NetNs.delete('nsdn-t-own')
  assert.deepEqual(netnsNames(), [])
})

test('the helper makes and deletes namespaces beside nsdn: iproute2 sees them, errors are named', async () => {
  const { NetnsHelper } = await import('../../src/netns/helper.js')
  const h = NetnsHelper.start()
  assert.ok(h, 'dist/nsdn-netns is built by scripts/setup.sh')
  try {
    const names = Array.from({ length: 12 }, (_, i) => `nsdn-t-h${i}`)
    const made = await Promise.all(names.map((n) => h.create(n)))
    assert.deepEqual(
      ipJson<{ name: string }[]>(['netns', 'list'])
        .map((n) => n.name)
        .sort(),
      [...names].sort(),
    )
    // each is a namespace of its own, with its loopback device
    const ids = names.map((n) => {
      const ns = NetNs.open(n)
      const id = ns.id
      ns.close()
      return id
    })
    assert.equal(new Set(ids).size, names.length)
    assert.deepEqual(
      ipJson<{ ifname: string }[]>(['-n', names[0]!, 'link', 'show']).map((l) => l.ifname),
      ['lo'],
    )
    // each comes open, with a netlink socket made in it, copied from the helper (pidfd_getfd)
    for (const [i, m] of made.entries()) {
      assert.ok(m, `${names[i]}: the helper's fds were copied`)
      assert.equal(m.ns.name, names[i])
      assert.equal(m.ns.id, ids[i])
    }
    const r = Rtnl.adopt(made[0]!.ns, made[0]!.rtnlFd)
    assert.deepEqual(
      (await linkList(r)).map((l) => l.name),
      ['lo'],
    )
    r.close()
    for (const m of made) m!.ns.close()
    for (const m of made.slice(1)) fs.closeSync(m!.rtnlFd)
    await assert.rejects(h.create(names[0]!), { code: 'E_EXISTS' })
    assert.throws(() => h.create('a/b'), { code: 'E_CONFIG' })
    // deleted: unmounted at once, and held by the helper until it ends (one it did not make too)
    const other = NetNs.create('nsdn-t-other')
    const otherIno = other.id.split(':')[1]
    other.close()
    await Promise.all([...names, 'nsdn-t-other'].map((n) => h.delete(n)))
    assert.deepEqual(netnsNames(), [])
    const [helper] = procs(
      (p) =>
        p.stat.includes(' (nsdn-netns) ') &&
        p.stat.split(') ')[1]!.split(' ')[1] === `${process.pid}`,
    )
    assert.ok(helper, 'the helper runs')
    // an fd of the helper's is the namespace (its path shows "/": its mount is detached)
    const held = fs
      .readdirSync(`/proc/${helper}/fd`)
      .map((fd) => `${fs.statSync(`/proc/${helper}/fd/${fd}`).ino}`)
    assert.ok(held.includes(otherIno!), `the helper holds what it deleted: ${held}`)
    h.close()
    assert.equal(fs.existsSync(`/proc/${helper}`), false, 'closed: the helper has ended')
  } finally {
    h.close() // a failed assertion must not leave it running
  }
  // closed: the helper is gone, and says so
  await assert.rejects(h.create('nsdn-t-late'), /ended/)
  assert.deepEqual(netnsNames(), [])
})
