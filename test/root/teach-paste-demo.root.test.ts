import { sandboxThisFile } from '../helpers/sandbox.js'
sandboxThisFile()

/**
 * The teaching promise for the main job: the LXC book walkthrough's --explain lines, pasted
 * into a root shell, build what nsdn built (OVS bridge, tagged ports, namespaces, veths,
 * addresses); its cleanup lines, pasted, remove it all. TCP (iperf3) works between the two
 * namespaces on both paths: `nsdn ovs add-port` and the printed `ethtool -K` line turn off the
 * checksum offload that the userspace datapath cannot do.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { CLEANUP, WALKTHROUGH } from '../../src/demo/walkthrough.js'
import { iperf } from '../helpers/attach.js'
import { eventually, netnsNames, pingSoon, strayLinks } from '../helpers/kernel.js'
import { diffStates, explained, runPasted, snapshot } from '../helpers/paste.js'

/** The --explain script of the walkthrough's nsdn steps (pings and comments left out). */
function runSteps(steps: typeof WALKTHROUGH): string {
  let script = ''
  for (const s of steps) {
    if (!('nsdn' in s)) continue
    script += explained(s.nsdn)
  }
  return script
}

async function tcpWorks(): Promise<void> {
  assert.ok(pingSoon('192.168.0.2', 'ns1'), 'ns1 -> ns2 ping')
  const r = await iperf('ns2', '192.168.0.2', 'ns1')
  assert.ok(r.bytes > 0, `iperf3 moved ${r.bytes} bytes`)
}

test('the demo: pasted --explain lines build the same state; TCP works on both paths', async () => {
  const empty = snapshot()
  const build = runSteps(WALKTHROUGH)
  const built = snapshot()
  assert.ok(
    built.ovs?.some((b) => b.name === 'OVS-1'),
    'nsdn built the OVS bridge',
  )
  await tcpWorks()
  const teardown = runSteps(CLEANUP)
  // The kernel destroys a deleted namespace's devices a moment later.
  const isEmpty = (): boolean => diffStates(empty, snapshot()).length === 0
  await eventually(isEmpty)
  assert.deepEqual(diffStates(empty, snapshot()), [], 'nsdn cleaned up')

  // The printed lines say which OVS they talk to, and print the checksum step.
  assert.match(build, /^export OVS_RUNDIR=\/run\/nsdn\/ovs$/m)
  assert.doesNotMatch(build, /ovs-vsctl --db=unix:\/run\/nsdn\/ovs\/db.sock (?!--no-wait init)/)
  assert.match(build, /^ip netns exec ns1 ethtool -K eth1-ns1 tx-checksum-ip-generic off$/m)
  assert.match(teardown, /^rm -rf \/run\/nsdn\/ovs$/m)

  runPasted(build)
  assert.deepEqual(diffStates(built, snapshot()), [])
  await tcpWorks()
  runPasted(teardown)
  await eventually(isEmpty)
  assert.deepEqual(diffStates(empty, snapshot()), [], 'the pasted cleanup removed everything')
  assert.deepEqual(netnsNames(), [])
  assert.deepEqual(strayLinks(), [])
})
