import { sandboxThisFile } from '../helpers/sandbox.js'
sandboxThisFile()

/**
 * The paste helper itself: it sees every part of a state it promises to compare (so the paste
 * tests cannot pass because it looked away), runs a script as a root shell would, and says
 * which line of a pasted script failed.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { eventually, netnsNames, strayLinks } from '../helpers/kernel.js'
import { diffStates, explainScript, runPasted, snapshot } from '../helpers/paste.js'

const BUILD = `ip netns add p1
ip link add br-p type bridge
ip link set br-p up
ip link add vp1 master br-p type veth peer name eth0 netns p1
ip link set dev vp1 type bridge_slave hairpin on
ip link set vp1 up
ip -n p1 link set eth0 address 02:00:00:00:00:01 mtu 1400 up
ip -n p1 addr add 10.77.0.2/24 dev eth0
ip -n p1 addr add fd77::2/64 dev eth0 nodad
ip -n p1 route add 10.78.0.0/16 via 10.77.0.1
ip -n p1 -6 route add default dev eth0
sysctl -qw net.ipv4.ip_forward=1
nft -f - <<'EOF'
table inet t {
  chain c {
    type nat hook postrouting priority srcnat;
    ip saddr 10.77.0.2 masquerade comment "x"
  }
}
EOF
`

test('snapshot sees links, peers, MACs, addresses, routes, sysctls and nft; a paste rebuilds them', async () => {
  const empty = snapshot()
  runPasted(BUILD)
  const built = snapshot()
  const diff = diffStates(empty, built)
  for (const want of [
    /^netns p1: only in the second$/,
    /^netns host: link br-p: only in the second$/,
    /^netns host: link vp1: only in the second$/,
    /^netns host: sysctl: net\.ipv4\.ip_forward "0" != "1"$/,
    /^netns host: nft: only in the second: .*masquerade/,
  ])
    assert.ok(
      diff.some((l) => want.test(l)),
      `${want} not in:\n${diff.join('\n')}`,
    )
  const p1 = built.netns.p1!
  const eth0 = p1.links.find((l) => l.name === 'eth0')
  assert.deepEqual(eth0, {
    name: 'eth0',
    kind: 'veth',
    flags: ['UP'],
    mtu: 1400,
    mac: '02:00:00:00:00:01',
    peer: 'host/vp1',
  })
  const vp1 = built.netns.host!.links.find((l) => l.name === 'vp1')
  assert.equal(vp1?.peer, 'p1/eth0')
  assert.equal(vp1?.hairpin, true)
  assert.equal(vp1?.master, 'br-p')
  assert.equal(vp1?.mac, undefined, 'a kernel-assigned MAC is not part of the state')
  assert.deepEqual(p1.addrs, [
    'eth0 10.77.0.2/24 scope global',
    'eth0 fd77::2/64 scope global nodad',
  ])
  assert.deepEqual(p1.routes, [
    '10.77.0.0/24 dev eth0 proto kernel scope link src 10.77.0.2',
    '10.78.0.0/16 via 10.77.0.1 dev eth0',
    'default dev eth0 metric 1024',
    'fd77::/64 dev eth0 proto kernel metric 256',
  ])
  assert.equal(built.netns.host!.sysctls['net.ipv4.ip_forward'], '1')

  // A second difference the helper must name: the same build but another MTU.
  const teardown =
    'ip netns del p1\nip link del br-p\nnft delete table inet t\nsysctl -qw net.ipv4.ip_forward=0\n'
  runPasted(teardown)
  // The kernel destroys a deleted namespace's devices a moment later.
  await eventually(() => diffStates(empty, snapshot()).length === 0)
  assert.deepEqual(diffStates(empty, snapshot()), [])
  runPasted(BUILD.replace('mtu 1400', 'mtu 1300'))
  assert.deepEqual(diffStates(built, snapshot()), ['netns p1: link eth0: mtu 1400 != 1300'])
  runPasted(teardown)
  // The kernel destroys a deleted namespace's devices a moment later.
  await eventually(() => diffStates(empty, snapshot()).length === 0)
  assert.deepEqual(diffStates(empty, snapshot()), [])
  assert.deepEqual(netnsNames(), [])
  assert.deepEqual(strayLinks(), [])
})

test('runPasted names the failing line; explainScript keeps commands and heredocs only', () => {
  assert.throws(
    () => runPasted('true\nip link del nsdn-nonexistent\ntrue\n'),
    /at line 2: ip link del nsdn-nonexistent/,
  )
  assert.equal(
    runPasted('echo "$PATH"').stdout.trim(),
    '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  )
  const stderr = [
    '# a bridge',
    'ip link add br0 type bridge',
    '{"level":40,"time":1,"msg":"warned"}',
    "nft -f - <<'EOF'",
    '{"level":40} stays: a heredoc body is the script',
    'EOF',
    'nsdn: something failed [E_KERNEL]',
    '  hint: do something else',
  ].join('\n')
  assert.equal(
    explainScript(stderr),
    "# a bridge\nip link add br0 type bridge\nnft -f - <<'EOF'\n" +
      '{"level":40} stays: a heredoc body is the script\nEOF\n',
  )
})
