import { sandboxThisFile } from '../helpers/sandbox.js'
sandboxThisFile()

import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import { after, test } from 'node:test'
import { addrAdd } from '../../src/netlink/addr.js'
import { linkAddVeth, linkSetUp } from '../../src/netlink/link.js'
import { Rtnl } from '../../src/netlink/rtnl.js'
import { NetNs } from '../../src/netns/netns.js'
import {
  DEFAULT_OVS_RUNDIR,
  defaultDatapathType,
  ovsClient,
  ovsStart,
  ovsStatus,
  ovsStop,
} from '../../src/ovs/daemon.js'
import { Vsctl, cmd } from '../../src/ovs/vsctl.js'
import { genlFamilyExists } from '../../src/netlink/genl.js'
import { eventually, netnsNames, ping, pingSoon, strayLinks } from '../helpers/kernel.js'

const DIR = DEFAULT_OVS_RUNDIR
const DB = `--db=unix:${DIR}/db.sock`
const BR = 'nsdn-t-br'

after(() => Rtnl.closeAll())

/** ovs-vsctl run by the test itself, output parsed with JSON.parse: nsdn's reads not involved. */
function portTags(): Record<string, unknown> {
  const argv = [DB, '--format=json', '--columns=name,tag', 'list', 'Port']
  const out = execFileSync('ovs-vsctl', argv, { encoding: 'utf8' })
  const t = JSON.parse(out) as { headings: string[]; data: [string, unknown][] }
  assert.deepEqual(t.headings, ['name', 'tag'])
  return Object.fromEntries(t.data.map(([name, tag]) => [name, tag]))
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

test('no openvswitch module, so no ovs_datapath family: netdev datapath', async () => {
  assert.equal(await genlFamilyExists('nlctrl'), true, 'the probe sees a family that exists')
  assert.equal(await genlFamilyExists('ovs_datapath'), false)
  assert.equal(await defaultDatapathType(), 'netdev')
})

test('a failed start names the daemon, carries its log tail and leaves nothing', async () => {
  // An ovs-vswitchd that dies at once, found first in PATH.
  const bin = '/run/nsdn-t-bin'
  fs.mkdirSync(bin)
  const script = '#!/bin/sh\necho "nsdn-t: broken on purpose" >&2\nexit 3\n'
  fs.writeFileSync(`${bin}/ovs-vswitchd`, script, { mode: 0o755 })
  const path = process.env.PATH
  process.env.PATH = `${bin}:${path}`
  try {
    const err = await ovsStart().catch((e: unknown) => e)
    assert.equal((err as { code: string }).code, 'E_EXEC')
    assert.match((err as Error).message, /^ovs-vswitchd exited \(status 3\)/)
    assert.match(String((err as { details: string }).details), /nsdn-t: broken on purpose/)
  } finally {
    process.env.PATH = path
    fs.rmSync(bin, { recursive: true })
  }
  assert.equal(fs.existsSync(DIR), false, 'run dir removed')
  assert.equal((await ovsStatus()).running, false)
})

test('LXC book VLAN lab on a private OVS: same tag pings, different tags do not', async (t) => {
  const t0 = performance.now()
  const st = await ovsStart()
  const startMs = performance.now() - t0
  t.diagnostic(`private OVS start: ${startMs.toFixed(0)} ms`)
  assert.equal(st.running, true)
  assert.equal(st.datapath, 'netdev')
  assert.match(st.version ?? '', /^\d+\.\d+\.\d+/)
  const { ovsdbServer, ovsVswitchd } = st.pids
  assert.ok(ovsdbServer && alive(ovsdbServer) && ovsVswitchd && alive(ovsVswitchd))
  assert.deepEqual((await ovsStart()).pids, st.pids, 'a second start keeps the running one')
  // The daemons answer on the private socket, independently of nsdn.
  assert.match(
    execFileSync('ovs-appctl', ['-t', `${DIR}/ovs-vswitchd.ctl`, 'version'], {
      encoding: 'utf8',
    }),
    /Open vSwitch/,
  )

  const vs = ovsClient()
  assert.equal(vs.db, `unix:${DIR}/db.sock`)
  await vs.addBr(BR, { datapathType: st.datapath })
  await vs.addBr(BR, { datapathType: st.datapath }) // --may-exist: a repeat is harmless
  const dpType = execFileSync('ovs-vsctl', [DB, 'get', 'Bridge', BR, 'datapath_type'], {
    encoding: 'utf8',
  })
  assert.equal(dpType.trim(), 'netdev')

  const root = Rtnl.for()
  for (const i of [1, 2]) {
    const ns = NetNs.create(`nsdn-t-h${i}`)
    await linkAddVeth(root, `nsdn-t-v${i}`, 'eth0', { peerNs: ns, up: true })
    const h = Rtnl.for(ns)
    await linkSetUp(h, 'lo')
    await linkSetUp(h, 'eth0')
    await addrAdd(h, `10.55.0.${i}/24`, 'eth0', { nodad: true })
    ns.close()
  }
  await vs.run([...cmd.addPort(BR, 'nsdn-t-v1'), ...cmd.addPort(BR, 'nsdn-t-v2')])
  assert.deepEqual(await vs.listPorts(BR), ['nsdn-t-v1', 'nsdn-t-v2'])
  assert.equal(await vs.portToBr('nsdn-t-v1'), BR)
  assert.ok(pingSoon('10.55.0.2', 'nsdn-t-h1'), 'untagged ports: h1 -> h2')

  await vs.run([...cmd.setPortTag('nsdn-t-v1', 100), ...cmd.setPortTag('nsdn-t-v2', 200)])
  assert.deepEqual(portTags(), { [BR]: ['set', []], 'nsdn-t-v1': 100, 'nsdn-t-v2': 200 })
  assert.equal((await vs.getPort('nsdn-t-v2'))?.tag, 200)
  assert.equal(ping('10.55.0.2', 'nsdn-t-h1'), false, 'tags 100 and 200: no path')

  await vs.setPortTag('nsdn-t-v2', 100)
  assert.equal(portTags()['nsdn-t-v2'], 100)
  assert.ok(pingSoon('10.55.0.2', 'nsdn-t-h1'), 'both tag 100: h1 -> h2 again')
  assert.ok(ping('10.55.0.1', 'nsdn-t-h2'), 'and back')

  // Trunks and clearing a tag, read back with nsdn and with ovs-vsctl itself.
  await vs.run([...cmd.setPortTag('nsdn-t-v1', null), ...cmd.setTrunks('nsdn-t-v1', [100, 300])])
  const trunks = execFileSync('ovs-vsctl', [DB, 'get', 'Port', 'nsdn-t-v1', 'trunks'], {
    encoding: 'utf8',
  })
  assert.equal(trunks.trim(), '[100, 300]')
  const p1 = await vs.getPort('nsdn-t-v1')
  assert.equal(p1?.tag, undefined)
  assert.deepEqual(p1?.trunks, [100, 300])
  assert.equal(p1?.interfaces.length, 1)

  await vs.run([...cmd.delPort('nsdn-t-v1'), ...cmd.delPort('nsdn-t-v2', BR), ...cmd.delBr(BR)])
  await vs.run([...cmd.delPort('nsdn-t-v1'), ...cmd.delBr(BR)]) // --if-exists: repeat is harmless
  assert.equal(execFileSync('ovs-vsctl', [DB, 'list-br'], { encoding: 'utf8' }), '')
  await assert.rejects(vs.listPorts(BR), { code: 'E_NOT_FOUND' })

  NetNs.delete('nsdn-t-h1')
  NetNs.delete('nsdn-t-h2')
  const t1 = performance.now()
  await ovsStop()
  t.diagnostic(`private OVS stop: ${(performance.now() - t1).toFixed(0)} ms`)

  assert.equal(fs.existsSync(DIR), false, 'run dir removed')
  assert.ok(await eventually(() => !alive(ovsdbServer) && !alive(ovsVswitchd)), 'daemons gone')
  assert.equal((await ovsStatus()).running, false)
  // No private instance: an error, never the system's default socket.
  assert.throws(() => ovsClient(), { code: 'E_UNAVAILABLE', hint: /nsdn ovs start/ })
  await ovsStop() // nothing to stop: no error
  assert.ok(await eventually(() => strayLinks().length === 0), `left: ${strayLinks()}`)
  assert.deepEqual(netnsNames(), [])
})

test('ovs-vsctl against a socket nobody serves: E_UNAVAILABLE with a hint', async () => {
  const vs = new Vsctl({ db: `unix:${DIR}/db.sock`, timeoutSec: 2 })
  await assert.rejects(vs.listBr(), {
    code: 'E_UNAVAILABLE',
    message: /No such file or directory/,
    hint: /nsdn ovs start/,
  })
})
