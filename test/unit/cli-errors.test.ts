import assert from 'node:assert/strict'
import { afterEach, beforeEach, test } from 'node:test'
import { CommanderError } from 'commander'
import { Exit, handleError, usageFromCommander } from '../../src/cli/errors.js'
import { ConfigError, KernelError, KernelFeatureError, NsdnError } from '../../src/errors.js'

const realExit = Exit.exit
let exits: number[] = []

beforeEach(() => {
  exits = []
  Exit.exit = (code: number) => void exits.push(code)
})
afterEach(() => {
  Exit.exit = realExit
})

/** Run the boundary on err; what it printed on each stream, and the exit status it chose. */
function boundary(err: unknown, json = false): { out: string; err: string; exit: number } {
  let out = ''
  let errText = ''
  exits = []
  handleError(err, {
    json,
    stack: false,
    stdout: (t) => void (out += t),
    stderr: (t) => void (errText += t),
  })
  assert.equal(exits.length, 1, 'exits exactly once')
  return { out, err: errText, exit: exits[0]! }
}

test('an NsdnError: one line with the code, the hint, the cause chain; its table exit', () => {
  const root = new Error('ENOENT: no such file')
  const mid = new NsdnError('E_NETNS', 'cannot open /run/netns/h1', { cause: root })
  const e = new NsdnError('E_NETNS', 'netns "h1" does not exist', {
    cause: mid,
    hint: 'create it with "nsdn netns add h1"',
  })
  const r = boundary(e)
  assert.equal(
    r.err,
    'nsdn: netns "h1" does not exist [E_NETNS]\n' +
      '  hint: create it with "nsdn netns add h1"\n' +
      '  Caused by: cannot open /run/netns/h1\n' +
      '  Caused by: ENOENT: no such file\n',
  )
  assert.equal(r.out, '', 'stdout stays empty without --json')
  assert.equal(r.exit, 66)
})

test('a ConfigError names where, exits 78 (EX_CONFIG)', () => {
  const e = new ConfigError('invalid interface name "a/b"', 'link add NAME', { hint: 'h' })
  const r = boundary(e)
  assert.equal(r.err, 'nsdn: link add NAME: invalid interface name "a/b" [E_CONFIG]\n  hint: h\n')
  assert.equal(r.exit, 78)
})

test('a KernelError prints the equivalent command when the message lacks it', () => {
  const cmd = 'ip link add br0 type bridge'
  const e = new KernelError('E_EXISTS', 'link "br0" exists already', 'EEXIST', cmd, {
    hint: 'delete it or pick another name',
  })
  const r = boundary(e)
  assert.equal(
    r.err,
    'nsdn: link "br0" exists already [E_EXISTS]\n' +
      '  hint: delete it or pick another name\n' +
      '  equivalent: ip link add br0 type bridge\n',
  )
  assert.equal(r.exit, 1)
})

test('a KernelError whose message is the command does not repeat it', () => {
  const cmd = 'ip -n h1 link set eth0 mtu 9000'
  const e = new KernelError('E_KERNEL', `${cmd}: EINVAL`, 'EINVAL', cmd, {
    cause: new Error('netlink: EINVAL'),
  })
  const r = boundary(e)
  assert.equal(r.err, `nsdn: ${cmd}: EINVAL [E_KERNEL]\n  Caused by: netlink: EINVAL\n`)
  assert.equal(r.exit, 71)
})

test('a missing kernel feature exits 69 and names the kconfig option', () => {
  const r = boundary(new KernelFeatureError('802.1Q VLAN devices', 'CONFIG_VLAN_8021Q', 'use OVS'))
  assert.match(r.err, /^nsdn: this kernel lacks 802\.1Q VLAN devices \(CONFIG_VLAN_8021Q\) /)
  assert.match(r.err, /\[E_KERNEL_FEATURE\]\n {2}hint: use OVS\n$/)
  assert.equal(r.exit, 69)
})

test('a plain Error is a bug: E_INTERNAL, exit 70, a hint to get the stack', () => {
  const r = boundary(new TypeError('x is not a function'))
  assert.equal(
    r.err,
    'nsdn: x is not a function [E_INTERNAL]\n' +
      '  hint: this is a bug in nsdn; run it again with --log-level debug to see where\n',
  )
  assert.equal(r.exit, 70)
})

test('a thrown non-Error value is E_INTERNAL too', () => {
  const r = boundary('weird')
  assert.match(r.err, /^nsdn: weird \[E_INTERNAL\]\n/)
  assert.equal(r.exit, 70)
})

test('the stack of an internal error is printed on request', () => {
  let errText = ''
  handleError(new Error('boom'), { stack: true, stderr: (t) => void (errText += t) })
  assert.match(errText, /^nsdn: boom \[E_INTERNAL\]\n[\s\S]*at /)
  assert.deepEqual(exits, [70])
})

test('a multi-line message is printed as one line', () => {
  const r = boundary(new NsdnError('E_EXEC', 'ovs-vsctl failed:\n  no bridge\n'))
  assert.equal(r.err.split('\n')[0], 'nsdn: ovs-vsctl failed: no bridge [E_EXEC]')
})

test('--json adds {"error":{code,message,hint}} on stdout', () => {
  const r = boundary(new ConfigError('bad', 'x', { hint: 'fix it' }), true)
  assert.deepEqual(JSON.parse(r.out), {
    error: { code: 'E_CONFIG', message: 'x: bad', hint: 'fix it' },
  })
  assert.match(r.err, /^nsdn: x: bad \[E_CONFIG\]/, 'stderr still has the line for people')
  const plain = boundary(new Error('oops'), true)
  assert.equal(JSON.parse(plain.out).error.code, 'E_INTERNAL')
})

test("commander's usage errors are E_USAGE, exit 64, with the command's help as hint", () => {
  const ce = new CommanderError(1, 'commander.unknownOption', "error: unknown option '--bogus'")
  const r = boundary(usageFromCommander(ce, 'link add'))
  assert.equal(
    r.err,
    'nsdn: unknown option \'--bogus\' [E_USAGE]\n  hint: see "nsdn link add --help"\n',
  )
  assert.equal(r.exit, 64)
  const direct = boundary(new CommanderError(1, 'commander.missingArgument', 'error: missing'))
  assert.equal(direct.err, 'nsdn: missing [E_USAGE]\n  hint: see "nsdn --help"\n')
})

test('help exits 0 when asked for, 64 when shown for a missing command; prints nothing', () => {
  const shown = boundary(new CommanderError(0, 'commander.helpDisplayed', '(outputHelp)'))
  assert.deepEqual([shown.err, shown.exit], ['', 0])
  const missing = boundary(new CommanderError(1, 'commander.help', '(outputHelp)'))
  assert.deepEqual([missing.err, missing.exit], ['', 64])
})
