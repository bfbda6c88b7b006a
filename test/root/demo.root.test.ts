import { sandboxThisFile } from '../helpers/sandbox.js'
sandboxThisFile()

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ok } from '../helpers/cli.js'
import { netnsNames, strayLinks } from '../helpers/kernel.js'

test('the main job: the OVS VLAN lab deploys, passes its checks, draws, destroys to nothing', () => {
  const r = ok(['demo'])
  assert.match(r.stdout, /^ok {3}ns1 -> ns3 \(192\.168\.0\.3\): reach: answered$/m)
  assert.match(r.stdout, /^ok {3}ns1 -> ns2 \(192\.168\.0\.2\): isolated: silent$/m)
  assert.match(r.stdout, /^ok {3}ns1 -> ns3 \(192\.168\.0\.3\): throughput >= 10\.0 Mbit\/s: /m)
  assert.match(r.stdout, /^graph TD$/m)
  const verdict = r.stdout.slice(r.stdout.indexOf('# verdict'))
  assert.match(verdict, /ok {3}nsdn lab verify/)
  assert.match(verdict, /nothing left behind/)
  assert.match(r.stdout, /^PASS/m)
  // Teaching: every step shows the command it stands for, after why.
  assert.match(r.stderr, /^# port of OVS-1 in VLAN 200/m)
  assert.match(
    r.stderr,
    /^ovs-vsctl add-port vlan-OVS-1 vlan-veth-ns2 -- set Port vlan-veth-ns2 tag=200$/m,
  )
  assert.match(r.stderr, /^ip -n vlan-ns1 addr add 192\.168\.0\.1\/24 dev eth1$/m)
  assert.match(r.stderr, /^ovsdb-tool create /m)
  assert.match(r.stderr, /^ip netns del vlan-ns1$/m)
  assert.deepEqual(netnsNames(), [])
  assert.deepEqual(strayLinks(), [])
})

test('demo --commands: the book walkthrough typed as nsdn commands passes and leaves nothing', () => {
  const r = ok(['demo', '--commands'])
  const verdict = r.stdout.slice(r.stdout.indexOf('# verdict'))
  assert.match(verdict, /ok {3}ns1 -> 192\.168\.0\.2: reply/)
  assert.match(verdict, /ok {3}ns1 -> 192\.168\.0\.2: silence/)
  assert.match(verdict, /ok {3}ns2 -> 192\.168\.0\.1: silence/)
  assert.match(verdict, /nothing left behind/)
  assert.match(r.stdout, /^PASS/m)
  // Teaching: every step shows the command it stands for.
  assert.match(r.stderr, /^ip link add eth1-ns1 type veth peer name veth-ns1$/m)
  assert.match(r.stderr, /^ip link set eth1-ns1 netns ns1$/m)
  assert.match(r.stderr, /^ip -n ns1 addr add 192\.168\.0\.1\/24 dev eth1-ns1$/m)
  assert.match(r.stderr, /^ovs-vsctl set Port veth-ns2 tag=200$/m)
  // Which OVS the lines talk to is said once, by the start.
  assert.equal(r.stderr.match(/^export OVS_RUNDIR=/gm)?.length, 1, r.stderr)
  assert.deepEqual(netnsNames(), [])
  assert.deepEqual(strayLinks(), [])
})
