import { sandboxThisFile } from '../helpers/sandbox.js'
sandboxThisFile()

/**
 * The teaching promise for `net attach` / `net detach`, every driver with its main options: the
 * --explain lines of two attaches, pasted into a root shell, build the state nsdn built (links,
 * addresses, routes of both families, sysctls, nft, OVS ports and tags) and the containers
 * ping each other; the detach lines, pasted, bring the state back to what nsdn's detach left.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ok } from '../helpers/cli.js'
import { eventually, ping, pingSoon } from '../helpers/kernel.js'
import { usePrivateOvs } from '../helpers/ovs.js'
import { diffStates, explainScript, explained, runPasted, snapshot } from '../helpers/paste.js'

const DATA = '/run/nsdn-t-paste-ipam'

usePrivateOvs(DATA)

/** The state equals `want` once the kernel has destroyed what a deleted netns held. */
async function settlesTo(want: ReturnType<typeof snapshot>, what: string): Promise<void> {
  await eventually(() => diffStates(want, snapshot()).length === 0)
  assert.deepEqual(diffStates(want, snapshot()), [], what)
}

interface Case {
  name: string
  driver: string
  conf: Record<string, unknown>
  /** h1 pings these addresses of h2 (the second attach's). */
  ping: string[]
  /** What a printed line must say (the point of the case). */
  prints?: RegExp[]
  /** The same for detach. */
  detachPrints?: RegExp[]
  /** Removes what nsdn's detach leaves on purpose (bridges, gateway, tables, sysctls). */
  cleanup: string
}

const ipam = (...subnets: string[]) => ({
  type: 'host-local',
  dataDir: DATA,
  ranges: subnets.map((subnet) => [{ subnet }]),
})

const FORWARDING_OFF =
  'sysctl -qw net.ipv4.ip_forward=0\nsysctl -qw net.ipv6.conf.all.forwarding=0\n'

const CASES: Case[] = [
  {
    name: 'bridge: gateway, masquerade, MAC spoof check, hairpin; IPv4 and IPv6',
    driver: 'bridge',
    conf: {
      name: 'pb',
      bridge: 'br-pb',
      isGateway: true,
      ipMasq: true,
      macspoofchk: true,
      hairpinMode: true,
      ipam: ipam('10.81.0.0/24', 'fd81::/64'),
    },
    ping: ['10.81.0.3', 'fd81::3', '10.81.0.1'],
    prints: [
      /^ip -n h1 link set eth0 address 02:/m,
      /^nft -f - <<'EOF'$/m,
      /ip daddr != 10\.81\.0\.0\/24 /,
      /^ip addr add 10\.81\.0\.1\/24 dev br-pb$/m,
      /^ip addr add fd81::1\/64 dev br-pb nodad$/m,
    ],
    // By name: a rule handle would only match on a host whose ruleset grew the same way.
    detachPrints: [
      /^nft delete chain inet nsdn veth\w+$/m,
      /^nft delete chain bridge nsdn veth\w+$/m,
    ],
    cleanup:
      'ip link del br-pb\nnft delete table inet nsdn\nnft delete table bridge nsdn\n' +
      FORWARDING_OFF,
  },
  {
    name: 'bridge: default gateway route, IPv6 only',
    driver: 'bridge',
    conf: { name: 'pd', bridge: 'br-pd', isDefaultGateway: true, ipam: ipam('fd82::/64') },
    ping: ['fd82::3'],
    prints: [/^ip -n h1 route add default via fd82::1$/m],
    cleanup: 'ip link del br-pd\n' + FORWARDING_OFF,
  },
  {
    name: 'ovs: access VLAN and trunks',
    driver: 'ovs',
    conf: { name: 'po', bridge: 'br-po', vlan: 10, trunk: [20, 30], ipam: ipam('10.83.0.0/24') },
    ping: ['10.83.0.3'],
    prints: [/^export OVS_RUNDIR=/m, /^ip netns exec h1 ethtool -K eth0 /m],
    cleanup: '',
  },
  {
    name: 'vlan, OVS backend: access VLAN and trunk',
    driver: 'vlan',
    conf: {
      name: 'pv',
      backend: 'ovs',
      bridge: 'br-pv',
      vlanId: 100,
      trunk: [200],
      ipam: ipam('10.84.0.0/24', 'fd84::/64'),
    },
    ping: ['10.84.0.3', 'fd84::3'],
    cleanup: '',
  },
  {
    name: 'routed: IPv4 and IPv6, masquerade',
    driver: 'routed',
    conf: { name: 'pr', ipMasq: true, ipam: ipam('10.85.0.0/24', 'fd85::/64') },
    ping: ['10.85.0.3', 'fd85::3'],
    prints: [/^ip addr add fe80::1\/64 dev veth\w+ nodad$/m, /^ip addr add 10\.85\.0\.1\/32 dev /m],
    cleanup: 'nft delete table inet nsdn\n' + FORWARDING_OFF,
  },
]

for (const c of CASES)
  test(`paste: ${c.name}`, async () => {
    const empty = snapshot()
    const conf = JSON.stringify({ cniVersion: '1.0.0', type: c.driver, ...c.conf })
    const net = (verb: string, ns: string): string =>
      explained(['net', verb, ns, '--driver', c.driver, '--conf', conf])
    // What detach leaves on purpose (bridges, tables, sysctls, lo up), namespaces and leases.
    const leftovers = `ip netns del h1\nip netns del h2\n${c.cleanup}rm -rf ${DATA}\n`
    const namespaces = 'ip netns add h1\nip netns add h2\n'
    try {
      runPasted(namespaces)
      const fresh = snapshot()
      const attach = net('attach', 'h1') + net('attach', 'h2')
      const built = snapshot()
      for (const p of c.ping) assert.ok(pingSoon(p, 'h1'), `nsdn: h1 -> ${p}`)
      for (const re of c.prints ?? []) assert.match(attach, re)
      assert.match(attach, /^# /m, 'the steps come with comments that say why')
      const detach = net('detach', 'h2') + net('detach', 'h1')
      for (const re of c.detachPrints ?? []) assert.match(detach, re)
      assert.doesNotMatch(attach + detach, /\bhandle\b|'"'|';'/, 'no handles, no per-token quoting')
      const detached = snapshot()
      runPasted(leftovers + namespaces)
      await settlesTo(fresh, 'a fresh state again')

      runPasted(attach)
      assert.deepEqual(diffStates(built, snapshot()), [], `pasted:\n${attach}`)
      for (const p of c.ping) assert.ok(pingSoon(p, 'h1'), `pasted: h1 -> ${p}`)
      runPasted(detach)
      assert.deepEqual(diffStates(detached, snapshot()), [], `pasted:\n${detach}`)
      assert.ok(!ping(c.ping[0]!, 'h1'), 'after the pasted detach, h1 reaches nothing')
    } finally {
      runPasted(`set +e\n${leftovers}true\n`)
    }
    await settlesTo(empty, 'the case left nothing behind')
  })

test('paste: devices named like iproute2 keywords (dev, up, m) are printed after dev or name', async () => {
  const empty = snapshot()
  const steps = [
    ['link', 'add', 'name', 'dev', 'type', 'bridge'],
    ['link', 'add', 'name', 'up', 'type', 'veth', 'peer', 'name', 'm'],
    ['link', 'set', 'dev', 'm', 'master', 'dev', 'up'],
    ['link', 'set', 'dev', 'up', 'mtu', '1400', 'up'],
    ['link', 'set', 'dev', 'dev', 'up'],
  ]
  const script = steps.map((a) => explained([...a])).join('')
  const built = snapshot()
  // Bare, `ip link set up up` has no device and `ip link add up ...` no name.
  assert.match(script, /^ip link add name up type veth peer name m$/m)
  assert.match(script, /^ip link set dev up mtu 1400 up$/m)
  const gone = explained(['link', 'del', 'dev', 'up']) + explained(['link', 'del', 'dev', 'dev'])
  assert.match(gone, /^ip link del dev up$/m)
  await settlesTo(empty, 'nsdn removed them')
  runPasted(script)
  assert.deepEqual(diffStates(built, snapshot()), [], `pasted:\n${script}`)
  runPasted(gone)
  await settlesTo(empty, 'the pasted deletes removed them')
})

test('paste: CLI steps: a gatewayless IPv6 default route, IPv4 without nodad, netns exec', async () => {
  const empty = snapshot()
  const steps = [
    ['link', 'add', 'v1', 'type', 'veth', 'peer', 'eth0', 'netns', 'h1'],
    ['-n', 'h1', 'link', 'set', 'eth0', 'up'],
    ['-n', 'h1', 'addr', 'add', '10.86.0.2/24', 'dev', 'eth0', 'nodad'],
    ['-n', 'h1', 'addr', 'add', 'fd86::2/64', 'dev', 'eth0', 'nodad'],
    ['-n', 'h1', 'route', 'add', '-6', 'default', 'dev', 'eth0'],
  ]
  try {
    runPasted('ip netns add h1\n')
    const script = steps.map((a) => explained([...a])).join('')
    const built = snapshot()
    // Without -6, the pasted line would add an IPv4 default route.
    assert.match(script, /^ip -6 -n h1 route add default dev eth0$/m)
    assert.ok(built.netns.h1!.routes.some((r) => /^default dev eth0 metric 1024$/.test(r)))
    assert.ok(!built.netns.h1!.routes.some((r) => /^default dev eth0 scope link/.test(r)))
    // DAD is IPv6's: nothing to say (or set) on an IPv4 address.
    assert.match(script, /^ip -n h1 addr add 10\.86\.0\.2\/24 dev eth0$/m)
    assert.ok(built.netns.h1!.addrs.includes('eth0 10.86.0.2/24 scope global'))
    runPasted('ip netns del h1\n')
    await settlesTo(empty, 'v1 went with h1')
    runPasted('ip netns add h1\n')
    runPasted(script)
    assert.deepEqual(diffStates(built, snapshot()), [], `pasted:\n${script}`)

    // netns exec and sandbox print the command they stand for, which runs the same.
    const args = ['netns', 'exec', 'h1', '--', 'ip', '-6', 'route', 'show', 'default']
    const r = ok(['--explain', ...args])
    assert.equal(explainScript(r.stderr), 'ip netns exec h1 ip -6 route show default\n')
    assert.equal(runPasted(explainScript(r.stderr)).stdout, r.stdout)
    const sb = ok([
      '--explain',
      'sandbox',
      '--',
      'sh',
      '-c',
      'ip netns list; ip -o link show | wc -l',
    ])
    assert.match(sb.stderr, /^unshare --net --mount --pid --fork --mount-proc /m)
    assert.equal(sb.stdout, '1\n', 'a sandbox: no namespaces, only lo')
    assert.equal(runPasted(explainScript(sb.stderr)).stdout, sb.stdout)
  } finally {
    runPasted('set +e\nip netns del h1\ntrue\n')
  }
  await settlesTo(empty, 'nothing left')
})
