import { sandboxThisFile } from '../helpers/sandbox.js'
sandboxThisFile()

import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { Rtnl } from '../../src/netlink/rtnl.js'
import { ovsStop } from '../../src/ovs/daemon.js'
import { importImage } from '../../src/runtime/image.js'
import { ok } from '../helpers/cli.js'
import { eventually, ipJson, ipLinks, netnsNames } from '../helpers/kernel.js'
import { assertNoLab, labFiles } from '../helpers/lab.js'
import { diffStates, explainScript, runPasted, snapshot } from '../helpers/paste.js'
import { busyboxRoot, runtimeTestFile } from '../helpers/runtime.js'

// Container nodes (09): the runtime's directories on the sandbox's /run, a cgroup parent of
// this file's own, and the image the scenario names, as a fresh machine would import it.
runtimeTestFile()
before(() => {
  importImage('busybox', busyboxRoot())
})

const SCENARIOS = path.resolve(__dirname, '../../../scenarios')
/** A pasted script's `nsdn run` finds nsdn, and the runtime's directories, as deploy does. */
const PASTE_ENV = {
  PATH: `${path.resolve(__dirname, '../../../bin')}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
  ...Object.fromEntries(
    ['NSDN_RUN_DIR', 'NSDN_LIB_DIR', 'NSDN_CGROUP_PARENT'].map((k) => [k, process.env[k]!]),
  ),
}
const OVS_DB = 'unix:/run/nsdn/ovs/db.sock'

const files = fs
  .readdirSync(SCENARIOS)
  .filter((f) => /^(0\d-.*|star-250)\.yaml$/.test(f))
  .sort()
  .map((f) => path.join(SCENARIOS, f))

test('there are scenarios 01 to 09, and the 250-host star', () => {
  assert.deepEqual(
    files.map((f) => path.basename(f).slice(0, 2)),
    ['01', '02', '03', '04', '05', '06', '07', '08', '09', 'st'],
  )
})

for (const file of files) {
  const name = path.basename(file)
  test(`${name}: opens with the schema line and a comment on what it teaches`, () => {
    const [first, second, third] = fs.readFileSync(file, 'utf8').split('\n')
    assert.equal(first, '# yaml-language-server: $schema=./schema.json')
    assert.equal(second, '#')
    assert.match(third!, /^# (\d\d|star-\d+): \w/)
  })

  test(`${name}: deploys, passes its checks, re-deploys as unchanged, destroys to nothing`, async () => {
    const d = ok(['lab', 'deploy', file])
    assert.match(d.stdout, /created, ready/)
    const v = ok(['lab', 'verify', file])
    assert.doesNotMatch(v.stdout, /^FAIL/m)
    assert.match(v.stdout, /all \d+ checks passed/)
    // the kernel agrees: every namespace of the lab exists (read with ip, not nsdn)
    const inspect = JSON.parse(ok(['--json', 'lab', 'inspect', file]).stdout) as {
      nodes: { netns: string }[]
    }
    for (const n of inspect.nodes.filter((x) => !x.netns.startsWith('(root)')))
      assert.ok(netnsNames().includes(n.netns), `${n.netns} exists`)
    assert.match(ok(['lab', 'deploy', file]).stdout, /unchanged, nothing to do/)
    assert.match(ok(['lab', 'list']).stdout, /deployed/)
    ok(['lab', 'destroy', file])
    await assertNoLab(name, { containers: true })
  })

  test(`${name}: lab explain, pasted into a shell, builds what deploy builds`, async () => {
    const hasOvs = /kind: ovs/.test(fs.readFileSync(file, 'utf8'))
    const opts = hasOvs ? { ovsDb: OVS_DB } : {}
    const baseline = snapshot()
    const d = ok(['--explain', 'lab', 'deploy', file])
    const built = snapshot(opts)
    const script = ok(['lab', 'explain', file]).stdout
    // deploy --explain prints the same commands as lab explain, each after a "# why"
    const commands = (s: string): string[] =>
      s.split('\n').filter((l) => l && !l.startsWith('#') && l !== 'set -e')
    assert.deepEqual(commands(explainScript(d.stderr)), commands(script))
    assert.match(d.stderr, /^# a veth pair/m)
    ok(['--explain', 'lab', 'destroy', file])
    await assertNoLab(`${name} after destroy`, { containers: true })
    assert.deepEqual(diffStates(baseline, snapshot()), [])

    runPasted(script, { env: PASTE_ENV })
    try {
      assert.deepEqual(diffStates(built, snapshot(opts)), [])
      // and it works: the scenario's checks pass on what the pasted commands built
      assert.match(ok(['lab', 'verify', file]).stdout, /all \d+ checks passed/)
    } finally {
      const rootLinks = script
        .split('\n')
        .flatMap((l) => /^#\s+ip link del ((?:group )?\S+)$/.exec(l)?.[1] ?? [])
      for (const l of script.split('\n')) {
        const c = /^#\s+nsdn rm -f (\S+)$/.exec(l)?.[1]
        if (c) ok(['rm', '-f', c])
      }
      for (const n of netnsNames()) spawnSync('ip', ['netns', 'del', n])
      for (const l of rootLinks) spawnSync('ip', ['link', 'del', ...l.split(' ')])
      Rtnl.closeAll()
      await ovsStop()
    }
    await assertNoLab(`${name} after the pasted lab`, { containers: true })
  })
}

test('a containerlab file deploys as it is: namespaces, a bridge with its ports, a host veth', async () => {
  const file = path.join(SCENARIOS, 'clab', 'two-hosts.clab.yml')
  const d = ok(['lab', 'deploy', file])
  assert.match(d.stderr, /note: node "h1": image "alpine:3" not imported: became a namespace/)
  assert.deepEqual(netnsNames(), ['twohos-h1', 'twohos-h2'])
  const links = ipLinks()
  const ports = links
    .filter((l) => l.master === 'twohos-br1')
    .map((l) => l.ifname)
    .sort()
  assert.deepEqual(ports, ['twohos-h1-eth1', 'twohos-h2-eth1'])
  assert.ok(links.some((l) => l.ifname === 'twohos-h1-eth2' && l.master === undefined))
  ok(['lab', 'destroy', file])
  await assertNoLab('clab', { containers: true })
})

const labs = labFiles()

const QUIET = `name: quiet
defaults: { kind: host, linkLocal: false }
nodes:
  sw: { kind: bridge, mcastSnooping: false }
  h1: { addresses: { eth0: [10.9.0.1/24, "fd00:9::1/64"] } }
  h2: { addresses: { eth0: [10.9.0.2/24, "fd00:9::2/64"] } }
  loud: { linkLocal: true, addresses: { eth0: 10.9.0.3/24 } }
  me: { kind: root }
links:
  - endpoints: ["h1:eth0", "sw"]
  - endpoints: ["h2:eth0", "sw"]
  - endpoints: ["loud:eth0", "sw"]
  - endpoints: ["me:q1", "h1:eth1"]
checks:
  - { from: h1, to: "fd00:9::2", expect: reach }
  - { from: h1, to: h2, expect: reach }
`

/** The devices of a namespace (or the sandbox root) that have an fe80:: address. */
const linkLocals = (ns?: string): string[] =>
  ipJson<{ ifname: string; addr_info: { local: string }[] }[]>(['-6', 'addr', 'show'], ns)
    .filter((l) => l.addr_info.some((a) => a.local.startsWith('fe80:')))
    .map((l) => l.ifname)

/** Each device of a namespace with its IPv6 address generation mode. */
const addrgenmodes = (ns?: string): Record<string, string | undefined> =>
  Object.fromEntries(
    ipJson<{ ifname: string; inet6_addr_gen_mode?: string }[]>(['-d', 'link', 'show'], ns).map(
      (l) => [l.ifname, l.inet6_addr_gen_mode],
    ),
  )

test('linkLocal: false gives no fe80:: address, mcastSnooping: false no snooping; pasted, the same', async () => {
  const file = labs.write('quiet.yaml', QUIET)
  const quietState = async (what: string): Promise<void> => {
    // the host that keeps the kernel's default gets its address: the check below can fail
    assert.ok(await eventually(() => linkLocals('quiet-loud').includes('eth0')), `${what}: loud`)
    assert.deepEqual(linkLocals('quiet-h1'), [], `${what}: h1 has no link-local address`)
    assert.deepEqual(linkLocals('quiet-h2'), [], `${what}: h2 has no link-local address`)
    assert.ok(!linkLocals().includes('quiet-q1'), `${what}: the root end has none either`)
    assert.equal(addrgenmodes('quiet-h1').eth0, 'none', what)
    assert.equal(addrgenmodes('quiet-h1').eth1, 'none', what)
    assert.equal(addrgenmodes()['quiet-q1'], 'none', what)
    assert.equal(addrgenmodes('quiet-loud').eth0, 'eui64', what)
    const br = ipLinks().find((l) => l.ifname === 'quiet-sw')
    assert.equal(br?.linkinfo?.info_data?.mcast_snooping, 0, `${what}: snooping off`)
    // IPv6 between addresses the file gives works without link-local ones
    assert.match(ok(['lab', 'verify', file]).stdout, /all 2 checks passed/, what)
  }
  ok(['lab', 'deploy', file])
  await quietState('deployed')
  const built = snapshot()
  const script = ok(['lab', 'explain', file]).stdout
  ok(['lab', 'destroy', file])
  await assertNoLab('quiet lab destroyed')

  runPasted(script, { env: PASTE_ENV })
  try {
    assert.deepEqual(diffStates(built, snapshot()), [])
    await quietState('pasted')
  } finally {
    for (const n of netnsNames()) spawnSync('ip', ['netns', 'del', n])
    for (const l of ['quiet-sw', 'quiet-q1']) spawnSync('ip', ['link', 'del', l])
    Rtnl.closeAll()
  }
  await assertNoLab('the pasted quiet lab')
})

after(async () => {
  Rtnl.closeAll()
  await assertNoLab('the end', { containers: true })
})
