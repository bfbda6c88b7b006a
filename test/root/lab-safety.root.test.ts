/**
 * State and safety of labs: refusals that need the kernel (netem, bridge VLAN filtering,
 * br_netfilter) create nothing; a failing deploy undoes itself and leaves interfaces it did not
 * create alone; two labs never collide; a deploy killed at any moment is destroyed, or
 * re-deployed, to a clean result; random mutations of scenarios never leave anything behind.
 */
import { sandboxThisFile } from '../helpers/sandbox.js'
sandboxThisFile()

import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { after, test } from 'node:test'
import fc from 'fast-check'
import { NsdnError } from '../../src/errors.js'
import { deploy } from '../../src/lab/deploy.js'
import { destroy } from '../../src/lab/destroy.js'
import { loadText } from '../../src/lab/load.js'
import { labGroup } from '../../src/lab/plan.js'
import { resolve } from '../../src/lab/resolve.js'
import { listLabs } from '../../src/lab/state.js'
import { Rtnl } from '../../src/netlink/rtnl.js'
import { ovsStop } from '../../src/ovs/daemon.js'
import { nsdn, nsdnChild } from '../helpers/cli.js'
import { ipAddrs, ipLinks, netnsNames, ping, procs } from '../helpers/kernel.js'
import { assertNoLab, labFiles } from '../helpers/lab.js'
import { explainScript, runPasted } from '../helpers/paste.js'
import { mutate, mutations } from '../helpers/lab-mutate.js'

const SCENARIOS = path.resolve(__dirname, '../../../scenarios')
const { write } = labFiles()

const PAIR = (name: string, extra = ''): string => `name: ${name}
nodes:
  a: { addresses: { eth0: 10.5.0.1/24 } }
  b: { addresses: { eth0: 10.5.0.2/24 } }
links:
  - { endpoints: ["a:eth0", "b:eth0"]${extra} }
checks:
  - { from: a, to: b, expect: reach }
`

test('delay and loss are refused, naming CONFIG_NET_SCH_NETEM; nothing is created', async () => {
  const r = nsdn(['lab', 'deploy', write('netem.yaml', PAIR('netem', ', delay: 10ms'))])
  assert.equal(r.status, 69, r.stderr)
  assert.match(
    r.stderr,
    /this kernel lacks the network emulator qdisc \(netem\).*CONFIG_NET_SCH_NETEM/,
  )
  assert.match(r.stderr, /hint: .*netem\.yaml:6:\d+ links\[0\]\.delay: .*rate/)
  await assertNoLab('netem')
})

test('VLANs on a Linux bridge are refused, naming CONFIG_BRIDGE_VLAN_FILTERING', async () => {
  const text = `name: brvlan
nodes:
  br: { kind: bridge }
  a: { addresses: { eth0: 10.6.0.1/24 } }
links:
  - { endpoints: ["a:eth0", "br"], vlan: 10 }
`
  const r = nsdn(['lab', 'deploy', write('brvlan.yaml', text)])
  assert.equal(r.status, 69, r.stderr)
  assert.match(r.stderr, /CONFIG_BRIDGE_VLAN_FILTERING/)
  assert.match(r.stderr, /kind: ovs/)
  await assertNoLab('brvlan')
})

test('bridged traffic that br_netfilter would drop is refused before anything is made', async (t) => {
  const knob = '/proc/sys/net/bridge/bridge-nf-call-iptables'
  if (!fs.existsSync(knob)) return t.skip('br_netfilter is not loaded on this kernel')
  const before = fs.readFileSync(knob, 'utf8').trim()
  fs.writeFileSync(knob, '1')
  const nft = (...a: string[]): void =>
    assert.equal(spawnSync('nft', a).status, 0, `nft ${a.join(' ')}`)
  nft('add', 'table', 'ip', 'filter')
  nft(
    'add',
    'chain',
    'ip',
    'filter',
    'FORWARD',
    '{ type filter hook forward priority 0; policy drop; }',
  )
  try {
    const r = nsdn(['lab', 'deploy', path.join(SCENARIOS, '03-bridge-pair.yaml')])
    assert.equal(r.status, 78, r.stderr)
    assert.match(r.stderr, /br_netfilter .*\(ip filter FORWARD\) drops them/)
    assert.match(r.stderr, /bridge-nf-call-iptables=0/)
    await assertNoLab('br_netfilter')
  } finally {
    nft('delete', 'table', 'ip', 'filter')
    fs.writeFileSync(knob, before)
  }
})

test('a deploy the kernel refuses half-way is undone, and a device it did not create stays', async () => {
  // The root namespace already has a device of the name the lab wants: the veth is refused.
  assert.equal(spawnSync('ip', ['link', 'add', 'clash-veth0', 'type', 'bridge']).status, 0)
  const text = `name: clash
nodes:
  host: { kind: root, addresses: { veth0: 10.7.0.1/24 } }
  a: { addresses: { eth0: 10.7.1.1/24 } }
  b: { addresses: { eth0: 10.7.1.2/24 } }
  c: { addresses: { veth1: 10.7.0.2/24 } }
links:
  - endpoints: ["a:eth0", "b:eth0"]
  - endpoints: ["host:veth0", "c:veth1"]
`
  const r = nsdn(['lab', 'deploy', write('clash.yaml', text)])
  assert.notEqual(r.status, 0)
  assert.match(r.stderr, /EEXIST/)
  await assertNoLab('clash', { keepLinks: ['clash-veth0'] })
  const kept = ipLinks().find((l) => l.ifname === 'clash-veth0')
  assert.equal(kept?.linkinfo?.info_kind, 'bridge', 'the existing device is untouched')
  spawnSync('ip', ['link', 'del', 'clash-veth0'])
})

test("destroy removes the lab's device group in one request, never with a device not the lab's", async () => {
  const file = write(
    'grp.yaml',
    `name: grp
nodes:
  sw: { kind: bridge }
  host: { kind: root, addresses: { veth0: 10.7.3.1/24 } }
  a: { addresses: { eth0: 10.7.2.1/24 } }
  b: { addresses: { eth0: 10.7.2.2/24, veth1: 10.7.3.2/24 } }
links:
  - endpoints: ["a:eth0", "sw"]
  - endpoints: ["b:eth0", "sw"]
  - endpoints: ["host:veth0", "b:veth1"]
`,
  )
  const g = String(labGroup('grp'))
  const grouped = (): string[] =>
    ipLinks()
      .filter((l) => l.group === g)
      .map((l) => l.ifname)
      .sort()
  const deployed = (): void => {
    assert.equal(nsdn(['lab', 'deploy', file]).status, 0)
    // the kernel holds every device the lab made in the root namespace in the lab's group
    assert.deepEqual(grouped(), ['grp-a-eth0', 'grp-b-eth0', 'grp-sw', 'grp-veth0'])
  }
  deployed()
  // --dry-run prints destroy's commands and changes nothing, the record included; pasted into
  // a shell, the commands remove the lab
  const dry = nsdn(['--dry-run', 'lab', 'destroy', file])
  assert.equal(dry.status, 0, dry.stderr)
  assert.deepEqual(listLabs(), ['grp'])
  assert.deepEqual(grouped(), ['grp-a-eth0', 'grp-b-eth0', 'grp-sw', 'grp-veth0'])
  runPasted(explainScript(dry.stderr))
  assert.deepEqual(grouped(), [])
  assert.deepEqual(netnsNames(), [])
  assert.equal(nsdn(['lab', 'destroy', file]).status, 0, 'the record goes; nothing else is left')
  await assertNoLab('grp, removed by its pasted destroy commands')

  deployed()
  const d = nsdn(['--explain', 'lab', 'destroy', file])
  assert.equal(d.status, 0, d.stderr)
  assert.match(d.stderr, new RegExp(`^ip link del group ${g}$`, 'm'))
  await assertNoLab('grp')

  // A device the lab did not make joins its group: the group is not deleted, the lab's
  // devices go one by one, and that device stays.
  deployed()
  assert.equal(
    spawnSync('ip', ['link', 'add', 'grp-other', 'group', g, 'type', 'bridge']).status,
    0,
  )
  const d2 = nsdn(['--explain', 'lab', 'destroy', file])
  assert.equal(d2.status, 0, d2.stderr)
  assert.doesNotMatch(d2.stderr, /link del group/)
  await assertNoLab('grp, another device in its group', { keepLinks: ['grp-other'] })
  assert.deepEqual(grouped(), ['grp-other'])
  spawnSync('ip', ['link', 'del', 'grp-other'])
})

test('NAT out of an uplink the file names: the uplink stays as it was, forwarding is restored', async () => {
  const sh = (...a: string[]): void =>
    assert.equal(spawnSync('ip', a).status, 0, `ip ${a.join(' ')}`)
  // An "internet" behind up0: the lab did not make up0, and has no route back to 10.9.0.0/24.
  sh('netns', 'add', 'inet')
  sh('link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', 'inet')
  sh('addr', 'add', '198.51.100.1/24', 'dev', 'up0')
  sh('link', 'set', 'up0', 'up')
  sh('-n', 'inet', 'addr', 'add', '198.51.100.2/24', 'dev', 'eth0')
  sh('-n', 'inet', 'link', 'set', 'eth0', 'up')
  const fwd = '/proc/sys/net/ipv4/ip_forward'
  fs.writeFileSync(fwd, '0')
  const uplink = (): unknown => {
    const l = ipLinks().find((x) => x.ifname === 'up0')
    return [l?.flags, l?.mtu, l?.master, ipAddrs().filter((a) => a.startsWith('up0 '))]
  }
  const before = uplink()
  const text = `name: up
uplinks: [up0]
nodes:
  host: { kind: root, addresses: { v0: 10.9.0.1/24 }, nat: [up0] }
  h1: { addresses: { eth0: 10.9.0.2/24 }, routes: [{ to: default, via: 10.9.0.1 }] }
links:
  - endpoints: ["host:v0", "h1:eth0"]
checks:
  - { from: h1, to: 198.51.100.2, expect: reach }
`
  const file = write('uplink.yaml', text)
  try {
    const d = nsdn(['lab', 'deploy', file])
    assert.equal(d.status, 0, d.stderr)
    assert.equal(fs.readFileSync(fwd, 'utf8').trim(), '1')
    assert.equal(nsdn(['lab', 'verify', 'up']).status, 0, 'h1 reaches the internet through NAT')
    assert.match(
      spawnSync('nft', ['list', 'table', 'ip', 'nsdn-up'], { encoding: 'utf8' }).stdout,
      /ip saddr 10\.9\.0\.0\/24 oifname "up0" masquerade/,
    )
    assert.deepEqual(uplink(), before, 'the uplink is untouched')
    const dd = nsdn(['lab', 'destroy', 'up'])
    assert.equal(dd.status, 0, dd.stderr)
    assert.equal(fs.readFileSync(fwd, 'utf8').trim(), '0', 'forwarding as it was')
    assert.equal(
      spawnSync('nft', ['list', 'table', 'ip', 'nsdn-up']).status,
      1,
      'the table is gone',
    )
    assert.deepEqual(uplink(), before, 'the uplink is still there, untouched')
  } finally {
    spawnSync('ip', ['netns', 'del', 'inet'])
  }
  await assertNoLab('uplink NAT')
})

test('two labs with the same node names never collide', async () => {
  const one = write('one.yaml', PAIR('one'))
  const two = write('two.yaml', PAIR('two').replace(/10\.5\.0/g, '10.5.1'))
  for (const f of [one, two]) assert.equal(nsdn(['lab', 'deploy', f]).status, 0)
  assert.deepEqual(netnsNames(), ['one-a', 'one-b', 'two-a', 'two-b'])
  assert.equal(nsdn(['lab', 'destroy', 'one']).status, 0)
  assert.deepEqual(netnsNames(), ['two-a', 'two-b'])
  assert.ok(ping('10.5.1.2', 'two-a'), 'the other lab still works')
  assert.equal(nsdn(['lab', 'destroy', 'two']).status, 0)
  await assertNoLab('two labs')
})

test('a changed file is reconciled; destroy works from the record when the file is gone', async () => {
  const f = write('chg.yaml', PAIR('chg'))
  assert.equal(nsdn(['lab', 'deploy', f]).status, 0)
  fs.writeFileSync(
    f,
    PAIR('chg').replace('10.5.0.2/24', '10.5.0.3/24').replace('to: b', 'to: 10.5.0.3'),
  )
  const r = nsdn(['lab', 'deploy', f])
  assert.match(r.stdout, /reconciled, ready/)
  assert.ok(ping('10.5.0.3', 'chg-a'))
  assert.equal(nsdn(['lab', 'verify', 'chg']).status, 0)
  fs.rmSync(f)
  assert.equal(nsdn(['lab', 'destroy', 'chg']).status, 0)
  await assertNoLab('changed')
})

/**
 * Kill `nsdn lab deploy FILE` after each delay, then destroy the lab from its journal (even
 * rounds) or deploy it again over what the kill left, verify and destroy it (odd rounds):
 * nothing of it may remain. `killed` runs after each kill, `settle` at the end of each round.
 */
async function killEach(
  file: string,
  lab: string,
  delays: number[],
  o: { killed?: (ms: number) => Promise<void>; settle?: () => Promise<void> } = {},
): Promise<void> {
  for (const [i, ms] of delays.entries()) {
    const child = nsdnChild(['lab', 'deploy', file])
    // On a quiet machine a late kill may find the deploy done: that case is covered too.
    const exited = new Promise((r) => child.once('exit', r))
    await new Promise((r) => setTimeout(r, ms))
    child.kill('SIGKILL')
    await exited
    await o.killed?.(ms)
    if (i % 2 === 0) {
      // destroy from whatever the journal says (or nothing: killed before the first record)
      const d = nsdn(['lab', 'destroy', lab])
      assert.ok(
        d.status === 0 || new RegExp(`no lab "${lab}" is deployed`).test(d.stderr),
        d.stderr,
      )
    } else {
      const d = nsdn(['lab', 'deploy', file])
      assert.equal(d.status, 0, `re-deploy after a kill at ${ms} ms: ${d.stderr}`)
      assert.equal(nsdn(['lab', 'verify', lab]).status, 0, `verify after a kill at ${ms} ms`)
      assert.equal(nsdn(['lab', 'destroy', lab]).status, 0)
    }
    await o.settle?.()
    await assertNoLab(`killed at ${ms} ms`)
  }
}

test('a deploy killed at any moment is destroyed, or re-deployed, to a clean result', async () => {
  // From early (still loading) to late (OVS ports, addresses).
  const delays = [60, 120, 180, 240, 300, 360, 420, 500, 600, 750, 900, 1100]
  await killEach(path.join(SCENARIOS, '02-ovs-vlan.yaml'), 'vlan', delays, {
    settle: async () => {
      Rtnl.closeAll()
      await ovsStop() // a kill before the journal's first line leaves a daemon nobody recorded
    },
  })
})

/** nsdn-netns processes in this test file's sandbox (its own mount namespace). */
function helpersAlive(): number[] {
  const mine = fs.readlinkSync('/proc/self/ns/mnt')
  return procs((p) => p.stat.includes(' (nsdn-netns) ') && p.mntNs === mine)
}

test('a big deploy killed while its helper makes namespaces: the helper dies too, destroy finds every one', async () => {
  const n = Array.from({ length: 24 }, (_, i) => i + 1)
  const file = write(
    'kst.yaml',
    [
      'name: kst',
      'nodes:',
      '  sw: { kind: bridge, subnet: 10.88.0.0/24 }',
      ...n.map((i) => `  h${i}: {}`),
      'links:',
      ...n.map((i) => `  - endpoints: ["h${i}:eth0", sw]`),
      'checks:',
      '  - { from: h1, to: h24, expect: reach }',
      '',
    ].join('\n'),
  )
  await killEach(file, 'kst', [100, 180, 260, 340, 450, 600], {
    killed: async (ms) => {
      // PR_SET_PDEATHSIG: no namespace is made after nsdn is gone (it would be in no journal)
      for (let t = 0; helpersAlive().length && t < 100; t++)
        await new Promise((r) => setTimeout(r, 10))
      assert.deepEqual(helpersAlive(), [], `a helper outlived a kill at ${ms} ms`)
    },
    settle: () => Promise.resolve(assert.deepEqual(helpersAlive(), [])),
  })
})

test('property: mutated scenarios deploy or are refused, and never leave anything behind', async () => {
  const texts = [
    '01-netns-veth.yaml',
    '03-bridge-pair.yaml',
    '05-routers.yaml',
    '06-routed-hosts.yaml',
  ].map((f) => fs.readFileSync(path.join(SCENARIOS, f), 'utf8'))
  await fc.assert(
    fc.asyncProperty(fc.nat(texts.length - 1), mutations, async (i, muts) => {
      let lab
      try {
        lab = resolve(loadText(mutate(texts[i]!, muts), 'mutated.yaml'))
        await deploy(lab)
      } catch (err) {
        if (!(err instanceof NsdnError) || err.code === 'E_INTERNAL') throw err
      }
      for (const n of listLabs()) await destroy(n)
      Rtnl.closeAll()
      await assertNoLab('mutated lab')
    }),
    { numRuns: 40 },
  )
})

after(async () => {
  Rtnl.closeAll()
  await ovsStop()
  await assertNoLab('the end')
})
