/** The lab benchmark's pure parts: the router chain it generates, and explain scripts batched. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { chainYaml } from '../../bench/lab.js'
import { batchify } from '../../bench/lab-run.js'
import { loadText } from '../../src/lab/load.js'
import { resolve } from '../../src/lab/resolve.js'

test('the chain is a valid lab: n routers, n-1 links, a check from the first to the 60th (TTL 64 back)', () => {
  const l = resolve(loadText(chainYaml(100), 'chain.yaml'))
  assert.equal(l.nodes.length, 100)
  assert.equal(l.links.length, 99)
  assert.ok(l.nodes.every((n) => n.kind === 'router'))
  assert.deepEqual(
    l.checks.map((c) => [c.from.name, c.addr]),
    [['r1', '10.100.59.2']],
  )
})

test('batchify: one ip -batch per namespace, a namespace after the one that makes its veth', () => {
  const script = [
    'set -e',
    '# why',
    'ip netns add a',
    'ip netns add b',
    'ip -n b link set lo up',
    'ip -n a link set lo up',
    'ip netns exec a sysctl -w net.ipv4.ip_forward=1',
    'ip -n a link add eth0 type veth peer name eth0 netns b',
    'ip -n b link set eth0 up',
    "ip netns exec a nft -f - <<'EOF'",
    'table ip nsdn {',
    '}',
    'EOF',
  ].join('\n')
  assert.equal(
    batchify(script),
    [
      "ip -batch - <<'EOB'\nnetns add a\nnetns add b\nEOB",
      "ip -n a -batch - <<'EOB'\nlink set lo up\nlink add eth0 type veth peer name eth0 netns b\nEOB",
      "ip -n b -batch - <<'EOB'\nlink set lo up\nlink set eth0 up\nEOB",
      'ip netns exec a sysctl -w net.ipv4.ip_forward=1',
      "ip netns exec a nft -f - <<'EOF'\ntable ip nsdn {\n}\nEOF",
      '',
    ].join('\n'),
  )
})

test('batchify: a teardown is one ip -batch, the namespaces deleted in it as the anchor does', () => {
  assert.equal(
    batchify(['ip link del s-sw', 'ip netns del s-h1', 'ip netns del s-h2'].join('\n')),
    "ip -batch - <<'EOB'\nlink del s-sw\nnetns del s-h1\nnetns del s-h2\nEOB\n",
  )
})
