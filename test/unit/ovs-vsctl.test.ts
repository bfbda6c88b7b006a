import assert from 'node:assert/strict'
import { afterEach, test } from 'node:test'
import { opMode } from '../../src/op.js'
import {
  type ExecFunc,
  type ExecResult,
  Vsctl,
  cmd,
  execProgram,
  ovsSet,
  parseOvsTable,
} from '../../src/ovs/vsctl.js'

interface Call {
  file: string
  args: string[]
  timeoutMs: number
}

/** A fake runner that records each call and answers with the next canned result. */
function fake(...results: Partial<ExecResult>[]): { exec: ExecFunc; calls: Call[] } {
  const calls: Call[] = []
  const exec: ExecFunc = async (file, args, timeoutMs) => {
    calls.push({ file, args: [...args], timeoutMs })
    return { exitCode: 0, signal: null, stdout: '', stderr: '', ...results.shift() }
  }
  return { exec, calls }
}

const DB = '--db=unix:/x/db.sock'

const { write } = opMode
afterEach(() => {
  opMode.dryRun = false
  opMode.explain = false
  opMode.write = write
})

test('helpers put --db and --timeout first and make calls idempotent', async () => {
  const f = fake()
  const vs = new Vsctl({ db: 'unix:/x/db.sock', timeoutSec: 7, exec: f.exec })
  await vs.addBr('br0', { datapathType: 'netdev' })
  await vs.delBr('br0')
  await vs.addPort('br0', 'v1', { tag: 100, trunks: [10, 20], mtu: 1400 })
  await vs.delPort('v1', 'br0')
  await vs.delPort('v2')
  await vs.setPortTag('v1', 200)
  await vs.setPortTag('v1', null)
  await vs.setTrunks('v1', [5])
  await vs.setTrunks('v1', [])
  const g = [DB, '--timeout=7']
  assert.deepEqual(
    f.calls.map((c) => c.args),
    [
      [...g, '--may-exist', 'add-br', 'br0', '--', 'set', 'Bridge', 'br0', 'datapath_type=netdev'],
      [...g, '--if-exists', 'del-br', 'br0'],
      [
        ...g,
        ...['--may-exist', 'add-port', 'br0', 'v1'],
        ...['--', 'set', 'Port', 'v1', 'tag=100', 'trunks=10,20'],
        ...['--', 'set', 'Interface', 'v1', 'mtu_request=1400'],
      ],
      [...g, '--if-exists', 'del-port', 'br0', 'v1'],
      [...g, '--if-exists', 'del-port', 'v2'],
      [...g, 'set', 'Port', 'v1', 'tag=200'],
      [...g, 'clear', 'Port', 'v1', 'tag'],
      [...g, 'set', 'Port', 'v1', 'trunks=5'],
      [...g, 'clear', 'Port', 'v1', 'trunks'],
    ],
  )
  assert.ok(f.calls.every((c) => c.file === 'ovs-vsctl' && c.timeoutMs > 7000))
})

test('without a private instance there is no --db, and the timeout defaults to 5 s', async () => {
  const f = fake()
  await new Vsctl({ exec: f.exec }).addBr('br0')
  assert.deepEqual(f.calls[0]?.args, ['--timeout=5', '--may-exist', 'add-br', 'br0'])
})

test('the commands of one step go into one call, "--" between them', async () => {
  const f = fake()
  const vs = new Vsctl({ exec: f.exec })
  await vs.run([
    ...cmd.addBr('br0'),
    ...cmd.addPort('br0', 'v1', { tag: 100 }),
    ...cmd.delBr('old'),
  ])
  assert.equal(f.calls.length, 1)
  assert.deepEqual(f.calls[0]?.args, [
    ...['--timeout=5', '--may-exist', 'add-br', 'br0'],
    ...['--', '--may-exist', 'add-port', 'br0', 'v1'],
    ...['--', 'set', 'Port', 'v1', 'tag=100'],
    ...['--', '--if-exists', 'del-br', 'old'],
  ])
  await vs.run([])
  assert.equal(f.calls.length, 1, 'an empty batch runs nothing')
})

test('bad names, VLAN ids and MTUs are refused before ovs-vsctl runs', async () => {
  const f = fake()
  const vs = new Vsctl({ exec: f.exec })
  await assert.rejects(vs.addPort('br0', 'v1', { tag: 4096 }), { code: 'E_CONFIG', message: /tag/ })
  await assert.rejects(vs.setTrunks('v1', [1, -2]), { code: 'E_CONFIG' })
  await assert.rejects(vs.addPort('br0', 'v1', { mtu: 10 }), { code: 'E_CONFIG', message: /mtu/ })
  await assert.rejects(vs.addBr('--help'), { code: 'E_CONFIG', message: /cannot start with/ })
  await assert.rejects(vs.addBr('a-name-longer-than-15'), { code: 'E_CONFIG' })
  await assert.rejects(vs.delPort('x y'), { code: 'E_CONFIG' })
  await assert.rejects(vs.listRows('Port; rm'), { code: 'E_CONFIG' })
  assert.throws(() => new Vsctl({ timeoutSec: 0 }), { code: 'E_CONFIG' })
  assert.equal(f.calls.length, 0)
})

// Printed by ovs-vsctl 3.1 for `--format=json --columns=name,tag,trunks,interfaces,other_config`.
const PORTS = JSON.stringify({
  data: [
    ['v2', 100, ['set', []], ['uuid', '4db0af4b-5f66-4c37-9201-6df43e21c9b4'], ['map', []]],
    [
      'v1',
      ['set', []],
      ['set', [10, 20]],
      [
        'set',
        [
          ['uuid', 'eaae7cb9-0000-0000-0000-000000000001'],
          ['uuid', 'eaae7cb9-0002'],
        ],
      ],
      [
        'map',
        [
          ['a', 'b'],
          ['n', 1],
        ],
      ],
    ],
    ['t', ['set', []], 30, ['set', []], ['map', [[['uuid', 'u-1'], true]]]],
  ],
  headings: ['name', 'tag', 'trunks', 'interfaces', 'other_config'],
})

test('the OVSDB JSON table format: atoms, sets, maps and uuids', () => {
  const rows = parseOvsTable(PORTS)
  assert.equal(rows.length, 3)
  const [v2, v1, t] = rows
  assert.equal(v2?.name, 'v2')
  assert.equal(v2?.tag, 100)
  assert.deepEqual(v2?.trunks, [])
  assert.deepEqual(v2?.interfaces, { uuid: '4db0af4b-5f66-4c37-9201-6df43e21c9b4' })
  assert.deepEqual(v2?.other_config, new Map())
  assert.deepEqual(v1?.tag, [])
  assert.deepEqual(v1?.trunks, [10, 20])
  assert.deepEqual(ovsSet(v1?.interfaces), [
    { uuid: 'eaae7cb9-0000-0000-0000-000000000001' },
    { uuid: 'eaae7cb9-0002' },
  ])
  assert.deepEqual(
    v1?.other_config,
    new Map<string, unknown>([
      ['a', 'b'],
      ['n', 1],
    ]),
  )
  // A one-element set is printed as the bare atom.
  assert.deepEqual(ovsSet(t?.trunks), [30])
  assert.deepEqual(ovsSet(v2?.tag), [100])
  assert.deepEqual(ovsSet(undefined), [])
  assert.deepEqual(t?.other_config, new Map([['u-1', true]]))
  assert.deepEqual(parseOvsTable('{"data":[],"headings":["name"]}'), [])
})

test('malformed JSON output is E_DECODE', () => {
  assert.throws(() => parseOvsTable('ovs-vsctl: oops'), { code: 'E_DECODE' })
  assert.throws(() => parseOvsTable('{"data":[[1]],"headings":[]}'), { code: 'E_DECODE' })
  assert.throws(() => parseOvsTable('{"data":[[["named-uuid","x"]]],"headings":["a"]}'), {
    code: 'E_DECODE',
  })
  assert.throws(() => ovsSet(new Map()), { code: 'E_DECODE' })
})

test('reads: list/find with --format=json, getPort, list-br, list-ports, port-to-br', async () => {
  const f = fake(
    { stdout: PORTS },
    { stdout: '{"data":[],"headings":["name","tag","trunks","interfaces"]}' },
    { stdout: PORTS },
    { stdout: 'br0\nbr1\n' },
    { stdout: 'v1\nv2\n' },
    { stdout: 'br0\n' },
    { exitCode: 1, stderr: 'ovs-vsctl: no port named nop\n' },
  )
  const vs = new Vsctl({ db: 'unix:/x/db.sock', exec: f.exec })
  assert.deepEqual(await vs.getPort('v1'), {
    name: 'v2',
    tag: 100,
    trunks: [],
    interfaces: ['4db0af4b-5f66-4c37-9201-6df43e21c9b4'],
  })
  assert.equal(await vs.getPort('nop'), undefined)
  assert.equal((await vs.findRows('Port', ['tag=100'], ['name'])).length, 3)
  assert.deepEqual(await vs.listBr(), ['br0', 'br1'])
  assert.deepEqual(await vs.listPorts('br0'), ['v1', 'v2'])
  assert.equal(await vs.portToBr('v1'), 'br0')
  assert.equal(await vs.portToBr('nop'), undefined)
  const g = [DB, '--timeout=5', '--format=json']
  assert.deepEqual(
    f.calls.map((c) => c.args),
    [
      [...g, '--columns=name,tag,trunks,interfaces', '--if-exists', 'list', 'Port', 'v1'],
      [...g, '--columns=name,tag,trunks,interfaces', '--if-exists', 'list', 'Port', 'nop'],
      [...g, '--columns=name', 'find', 'Port', 'tag=100'],
      [DB, '--timeout=5', 'list-br'],
      [DB, '--timeout=5', 'list-ports', 'br0'],
      [DB, '--timeout=5', 'port-to-br', 'v1'],
      [DB, '--timeout=5', 'port-to-br', 'nop'],
    ],
  )
})

interface Failure {
  name: string
  r: Partial<ExecResult>
  code: string
  msg: RegExp
  hint?: RegExp
}

const failures: Failure[] = [
  {
    name: 'not installed',
    r: { exitCode: null, spawnError: 'ENOENT' },
    code: 'E_UNAVAILABLE',
    msg: /not installed/,
    hint: /apt-get install openvswitch-switch/,
  },
  {
    name: 'no database socket',
    r: {
      exitCode: 1,
      stderr:
        'ovs-vsctl: unix:/x/db.sock: database connection failed (No such file or directory)\n',
    },
    code: 'E_UNAVAILABLE',
    msg: /unix:\/x\/db\.sock: No such file or directory/,
    hint: /nsdn ovs start/,
  },
  {
    name: 'ovs-vswitchd does not answer (ovs-vsctl --timeout)',
    r: {
      exitCode: null,
      signal: 'SIGALRM',
      stderr: '2026-01-01T00:00:00Z|00002|fatal_signal|WARN|terminating with signal 14\n',
    },
    code: 'E_UNAVAILABLE',
    msg: /no answer within 5 s/,
    hint: /nsdn ovs start/,
  },
  {
    name: 'killed by the runner timeout',
    r: { exitCode: null, signal: 'SIGTERM', timedOut: true },
    code: 'E_UNAVAILABLE',
    msg: /no answer/,
  },
  {
    name: 'missing bridge',
    r: { exitCode: 1, stderr: 'ovs-vsctl: no bridge named nob\n' },
    code: 'E_NOT_FOUND',
    msg: /^ovs-vsctl: no bridge named nob$/,
  },
  {
    name: 'name taken',
    r: {
      exitCode: 1,
      stderr:
        'ovs-vsctl: cannot create a port named br0 because a bridge named br0 already exists\n',
    },
    code: 'E_EXISTS',
    msg: /already exists/,
  },
  {
    name: 'anything else',
    r: { exitCode: 1, stderr: 'ovs-vsctl: constraint violation: 5000 is not in the valid range' },
    code: 'E_EXEC',
    msg: /constraint violation/,
  },
  { name: 'silent failure', r: { exitCode: 2 }, code: 'E_EXEC', msg: /failed \(exit 2\)/ },
]

for (const tc of failures)
  test(`error mapping: ${tc.name} -> ${tc.code}`, async () => {
    const vs = new Vsctl({ db: 'unix:/x/db.sock', exec: fake(tc.r).exec })
    const err = await vs.addBr('br0').catch((e: unknown) => e)
    assert.equal((err as { code: string }).code, tc.code)
    assert.equal((err as Error).name, 'ExecError')
    assert.match((err as Error).message, tc.msg)
    if (tc.hint) assert.match(String((err as { hint: string }).hint), tc.hint)
    assert.deepEqual((err as { argv: string[] }).argv.slice(0, 2), ['ovs-vsctl', DB])
    const details = String((err as { details: string }).details)
    assert.match(details, /^ovs-vsctl --db=unix:\/x\/db\.sock /)
  })

test('--dry-run prints writes without running them; reads still run', async () => {
  const f = fake({ stdout: 'br0\n' })
  const lines: string[] = []
  opMode.dryRun = true
  opMode.write = (l) => void lines.push(l)
  const vs = new Vsctl({ db: 'unix:/x/db.sock', exec: f.exec })
  assert.equal(await vs.addBr('br0', { datapathType: 'netdev' }), '')
  assert.equal(f.calls.length, 0)
  assert.deepEqual(await vs.listBr(), ['br0'])
  assert.equal(f.calls.length, 1)
  // --explain names the private OVS once (OVS_RUNDIR) and prints what a person types.
  assert.deepEqual(lines.slice(1), [
    'export OVS_RUNDIR=/x',
    'ovs-vsctl --may-exist add-br br0 -- set Bridge br0 datapath_type=netdev',
  ])
})

test('--explain prints each write as the ovs-vsctl command it runs, and runs it', async () => {
  const f = fake({}, { stdout: '{"data":[],"headings":["name"]}' })
  const lines: string[] = []
  opMode.explain = true
  opMode.write = (l) => void lines.push(l)
  const vs = new Vsctl({ exec: f.exec })
  await vs.addPort('br0', 'v1', { tag: 100 })
  await vs.listRows('Port')
  assert.equal(f.calls.length, 2)
  assert.deepEqual(lines, ['ovs-vsctl --may-exist add-port br0 v1 -- set Port v1 tag=100'])
})

test('the real runner: execFile, no shell, exit status, missing program, timeout', async () => {
  const ok = await execProgram('sh', ['-c', 'echo out; echo err >&2; exit 3', '$(x)'], 5000)
  assert.deepEqual(ok, { exitCode: 3, signal: null, stdout: 'out\n', stderr: 'err\n' })
  const missing = await execProgram('nsdn-t-no-such-program', [], 5000)
  assert.equal(missing.spawnError, 'ENOENT')
  const slow = await execProgram('sleep', ['5'], 100)
  assert.equal(slow.timedOut, true)
  assert.equal(slow.exitCode, null)
})
