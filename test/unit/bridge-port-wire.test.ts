/**
 * The bridge-port and promisc requests byte for byte as iproute2 6.1 sends them, captured with
 * `strace -e trace=sendmsg -e write=all` (netlink header left out: the socket layer adds it).
 * Indexes as in test/fixtures/iproute2/capture.sh: br0=2, vh1=4.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import * as K from '../../src/netlink/wire/constants.js'
import * as W from '../../src/netlink/wire/messages.js'
import { formatOp } from '../../src/teach/commands.js'

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex')

test('ip link set dev vh1 type bridge_slave hairpin on|off', () => {
  for (const on of [true, false]) {
    const req = W.setBridgePort(4, { hairpin: on })
    assert.equal(req.type, K.RTM_NEWLINK)
    assert.equal(req.flags, 0)
    const want = hex(`
      00 00 00 00 04 00 00 00 00 00 00 00 00 00 00 00
      20 00 12 00 10 00 01 00 62 72 69 64 67 65 5f 73
      6c 61 76 65 0c 00 05 00 05 00 04 00 0${on ? 1 : 0} 00 00 00`)
    assert.deepEqual(req.body, want)
    assert.equal(
      formatOp({ kind: 'link.set.bridge_slave', name: 'vh1', hairpin: on }),
      `ip link set dev vh1 type bridge_slave hairpin ${on ? 'on' : 'off'}`,
    )
  }
})

test('ip link set dev br0 promisc on', () => {
  const req = W.setLinkPromisc(2, true)
  assert.equal(req.type, K.RTM_NEWLINK)
  assert.deepEqual(req.body, hex('00 00 00 00 02 00 00 00 00 01 00 00 00 01 00 00'))
  assert.deepEqual(W.setLinkPromisc(2, false).body.subarray(8), hex('00 00 00 00 00 01 00 00'))
  assert.equal(
    formatOp({ kind: 'link.set.promisc', ns: 'h1', name: 'br0', on: true }),
    'ip -n h1 link set dev br0 promisc on',
  )
})

test('nft ops print as commands a root shell takes as they are', () => {
  const argv = ['add', 'rule', 'inet', 'nsdn', 'postrouting', 'ip', 'saddr', '10.1.0.2']
  assert.equal(
    formatOp({ kind: 'nft', argv: [...argv, 'masquerade', 'comment', '"nsdn:c1/eth0"', ';'] }),
    `nft ${argv.join(' ')} masquerade comment '"nsdn:c1/eth0"' ';'`,
  )
  assert.equal(
    formatOp({ kind: 'nft.show', argv: ['-j', 'list', 'table', 'inet', 'nsdn'] }),
    'nft -j list table inet nsdn',
  )
})
