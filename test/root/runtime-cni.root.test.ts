/**
 * Containers on CNI networks (`nsdn run --net FILE.conflist`, spec `networks: [{conflist}]`):
 * the reference bridge + host-local plugins (Debian's containernetworking-plugins) and nsdn's
 * own nsdn-bridge + nsdn-ipam. ADD at start, DEL with the cached result on stop and rm: no
 * lease, no veth, no cache entry left; a failed ADD rolls back everything start made. Leases
 * and the result cache are redirected into the sandbox's /run.
 */
import { sandboxThisFile } from '../helpers/sandbox.js'
sandboxThisFile()

import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { Rtnl } from '../../src/netlink/rtnl.js'
import * as rt from '../../src/runtime/index.js'
import { leases } from '../helpers/attach.js'
import { nsdn } from '../helpers/cli.js'
import { REFERENCE_DIR } from '../helpers/cni.js'
import { ipAddrs, ipLinks } from '../helpers/kernel.js'
import { busyboxRoot, execOut, leftovers, runtimeTestFile } from '../helpers/runtime.js'

runtimeTestFile()

const dataDir = fs.mkdtempSync('/run/nsdn-t-leases-')
const cacheDir = fs.mkdtempSync('/run/nsdn-t-cnicache-')
// The runtime runs in this process (library calls) and in the CLI's (inherited env).
process.env.CNI_PATH = REFERENCE_DIR
process.env.NSDN_CNI_CACHE_DIR = cacheDir
const SLEEP = ['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 1; done']

type Json = Record<string, unknown>

function writeList(name: string, list: Json): string {
  const file = path.join(dataDir, `${name}.conflist`)
  fs.writeFileSync(file, JSON.stringify(list))
  return file
}

const refList = (name: string, br: string, subnet: string): Json => ({
  cniVersion: '1.0.0',
  name,
  plugins: [
    {
      type: 'bridge',
      bridge: br,
      isGateway: true,
      ipam: { type: 'host-local', dataDir, ranges: [[{ subnet }]] },
    },
  ],
})

const cached = (): string[] =>
  fs.existsSync(path.join(cacheDir, 'results'))
    ? fs.readdirSync(path.join(cacheDir, 'results'))
    : []
const ports = (br: string): string[] =>
  ipLinks()
    .filter((l) => l.master === br)
    .map((l) => l.ifname)
const eth0 = (ns: string): string[] =>
  ipAddrs(ns)
    .filter((a) => a.startsWith('eth0 ') && !a.includes(':'))
    .map((a) => a.split(' ')[1]!)

before(() => {
  rt.importImage('bb', busyboxRoot())
})

after(() => {
  Rtnl.closeAll()
  for (const br of ['nsdn-t-cref', 'nsdn-t-cown', 'nsdn-t-cfail'])
    spawnSync('ip', ['link', 'del', br], { stdio: 'ignore' })
})

test('nsdn run --net FILE.conflist: the reference bridge + host-local; ping the gateway; rm leaves nothing', async () => {
  const file = writeList('refnet', refList('refnet', 'nsdn-t-cref', '10.91.0.0/24'))
  const r = nsdn(['run', '--name', 'r1', '--image', 'bb', '-d', '--net', file, '--', ...SLEEP])
  assert.equal(r.status, 0, r.stderr)
  assert.deepEqual(eth0('r1'), ['10.91.0.2/24'], "host-local's first address, seen with ip")
  const ping = await execOut('r1', ['ping', '-c1', '-W2', '10.91.0.1'])
  assert.equal(ping.code, 0, 'the container pings its gateway (the bridge)')
  assert.deepEqual(leases(dataDir, 'refnet'), ['10.91.0.2'])
  assert.deepEqual(cached(), ['refnet-r1-eth0'], "libcni's cache entry, named by the container")
  assert.equal(ports('nsdn-t-cref').length, 1, 'its veth on the bridge')
  // the attachment is nsdn cni's too: CHECK against the cached result passes
  const chk = nsdn(['cni', 'check', file, 'r1', 'r1'])
  assert.equal(chk.status, 0, chk.stderr)
  const rm = nsdn(['rm', '-f', 'r1'])
  assert.equal(rm.status, 0, rm.stderr)
  assert.deepEqual(leases(dataDir, 'refnet'), [], 'no lease')
  assert.deepEqual(cached(), [], 'no cache entry')
  assert.deepEqual(ports('nsdn-t-cref'), [], 'no veth')
  assert.deepEqual(leftovers(), [])
})

test('a spec network {conflist} with nsdn-bridge + nsdn-ipam: ADD at start, DEL on stop, nothing after rm', async () => {
  const file = writeList('ownnet', {
    cniVersion: '1.0.0',
    name: 'ownnet',
    plugins: [
      {
        type: 'nsdn-bridge',
        bridge: 'nsdn-t-cown',
        isGateway: true,
        ipam: { type: 'nsdn-ipam', dataDir, subnet: '10.92.0.0/24' },
      },
    ],
  })
  const s = await rt.run({
    name: 'o1',
    image: 'bb',
    command: SLEEP,
    networks: [{ conflist: file }],
  })
  fs.rmSync(file) // the spec keeps the config: DEL does not need the file
  assert.deepEqual(eth0('o1'), ['10.92.0.2/24'])
  assert.equal((await execOut('o1', ['ping', '-c1', '-W2', '10.92.0.1'])).code, 0)
  assert.deepEqual(leases(dataDir, 'ownnet'), ['10.92.0.2'])
  assert.deepEqual(cached(), ['ownnet-o1-eth0'])
  await rt.stop('o1', { timeout: 5 })
  assert.ok(
    !fs.existsSync(`/proc/${s.pid}/comm`) ||
      /Z/.test(fs.readFileSync(`/proc/${s.pid}/stat`, 'utf8')),
  )
  assert.deepEqual(leases(dataDir, 'ownnet'), [], 'stop released the lease (DEL)')
  assert.deepEqual(cached(), [], 'and the cache entry')
  assert.deepEqual(ports('nsdn-t-cown'), [], 'and the veth')
  // a copy keeps the network (the file is gone: the spec has its JSON)
  rt.clone('o1', 'o2')
  assert.equal(rt.loadState('o2').spec.networks[0]!.ifname, 'eth0')
  await rt.remove('o2')
  // a start attaches again, rm detaches
  await rt.start('o1')
  // host-local style allocation goes round-robin: the next free address
  assert.match(eth0('o1').join(), /^10\.92\.0\.\d+\/24$/)
  assert.equal(leases(dataDir, 'ownnet').length, 1)
  await rt.remove('o1', { force: true })
  assert.deepEqual(leases(dataDir, 'ownnet'), [])
  assert.deepEqual(cached(), [])
  assert.deepEqual(ports('nsdn-t-cown'), [])
  assert.deepEqual(leftovers(), [])
})

test('a failed ADD rolls back everything the start made: no container, lease, veth or cache', () => {
  const list = refList('failnet', 'nsdn-t-cfail', '10.93.0.0/24')
  ;(list.plugins as Json[]).push({ type: 'no-such-plugin' })
  const file = writeList('failnet', list)
  const r = nsdn(['run', '--name', 'f1', '--image', 'bb', '-d', '--net', file, '--', ...SLEEP])
  assert.notEqual(r.status, 0)
  assert.match(r.stderr, /CNI plugin "no-such-plugin" not found/)
  assert.deepEqual(leases(dataDir, 'failnet'), [])
  assert.deepEqual(cached(), [])
  assert.deepEqual(ports('nsdn-t-cfail'), [])
  assert.deepEqual(leftovers(), [], 'no container state, netns, cgroup or mount')
})

test('a bad conflist is refused at create, naming the file and the field', () => {
  const file = writeList('bad', { cniVersion: '1.0.0', name: 'bad', plugins: [{ bridge: 'x' }] })
  const r = nsdn(['run', '--name', 'b1', '--image', 'bb', '-d', '--net', file, '--', 'true'])
  assert.equal(r.status, 78, r.stderr)
  assert.match(r.stderr, /bad\.conflist: plugins\[0\]\.type: each plugin needs a "type"/)
  const missing = nsdn([
    'run',
    '--name',
    'b2',
    '--image',
    'bb',
    '--net',
    '/nope/x.conflist',
    '--',
    'true',
  ])
  assert.equal(missing.status, 78)
  assert.match(missing.stderr, /networks\[0\]\.conflist: cannot read "\/nope\/x\.conflist"/)
  assert.deepEqual(leftovers(), [])
})
