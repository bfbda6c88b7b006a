/** The benchmark's text handling: RESULT lines in, table and JSON out, options. No timing. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  type Sample,
  formatJson,
  formatTable,
  hostAddr,
  median,
  parseResultLine,
  sampleFromOutput,
  summarize,
} from '../../bench/format.js'
import { parseOptions } from '../../bench/main.js'

const BATCH =
  'RESULT method=batch n=250 run=1 create_s=1.5890 verify=ok verify_s=0.0054 struct=ok ' +
  'teardown_cmd_s=0.1035 teardown_s=0.2368 errors=0 create_root_s=0.4269 create_ns_s=1.1622'

test('host addresses follow the anchors: 200 hosts per /24 inside 10.77.0.0/16', () => {
  assert.equal(hostAddr(1), '10.77.1.1')
  assert.equal(hostAddr(200), '10.77.1.200')
  assert.equal(hostAddr(201), '10.77.2.1')
  assert.equal(hostAddr(1000), '10.77.5.200')
})

test('a RESULT line becomes key -> value; other lines are not RESULT lines', () => {
  const r = parseResultLine(BATCH)
  assert.ok(r)
  assert.equal(r.get('method'), 'batch')
  assert.equal(r.get('create_s'), '1.5890')
  assert.equal(r.get('struct'), 'ok')
  assert.equal(parseResultLine('create error: boom'), undefined)
  assert.equal(parseResultLine(''), undefined)
  const fail = parseResultLine('RESULT struct=FAIL(ports=3,bad_ns=1) verify=FAIL')
  assert.equal(fail?.get('struct'), 'FAIL(ports=3,bad_ns=1)')
})

test('a script output becomes a sample; a failed check makes it unverified, with why', () => {
  const out = `noise\n${BATCH}\n`
  assert.deepEqual(sampleFromOutput('ip-batch', 250, out), {
    method: 'ip-batch',
    n: 250,
    create_s: 1.589,
    teardown_s: 0.2368,
    verified: true,
  })
  const failing = BATCH.replace('verify=ok', 'verify=FAIL').replace('errors=0', 'errors=2')
  const bad = sampleFromOutput('ip', 10, failing)
  assert.equal(bad.verified, false)
  assert.equal(bad.create_s, 1.589)
  assert.match(bad.error ?? '', /verify=FAIL/)
  assert.match(bad.error ?? '', /errors=2/)
  const broken = BATCH.replace('struct=ok', 'struct=FAIL(ports=9,bad_ns=0)')
  const struct = sampleFromOutput('ip', 10, broken)
  assert.match(struct.error ?? '', /struct=FAIL\(ports=9/)
  const none = sampleFromOutput('mininet', 10, 'Traceback (most recent call last):\n')
  assert.deepEqual(none, {
    method: 'mininet',
    n: 10,
    create_s: null,
    teardown_s: null,
    verified: false,
    error: 'no RESULT line',
  })
})

test('median of odd and even counts, none for an empty list', () => {
  assert.equal(median([3, 1, 2]), 2)
  assert.equal(median([4, 1, 3, 2]), 2.5)
  assert.equal(median([]), null)
})

const s = (method: Sample['method'], n: number, c: number, t: number, verified = true): Sample => ({
  method,
  n,
  create_s: c,
  teardown_s: t,
  verified,
  ...(verified ? {} : { error: 'verify=FAIL' }),
})

const samples: Sample[] = [
  s('nsdn', 250, 0.5, 0.2),
  s('nsdn', 250, 0.7, 0.3),
  s('nsdn', 250, 0.6, 0.25),
  s('ip-batch', 250, 1.8, 0.3),
  s('ip-batch', 250, 1.5, 0.5),
  s('ip-batch', 250, 0.1, 0.1, false),
  s('ip', 10, 0.2, 0.1),
  s('nsdn', 10, 0.05, 0.1),
]

test('summary: medians of verified runs, ratios to nsdn at the same N, rows by N, method', () => {
  const rows = summarize(samples)
  assert.deepEqual(
    rows.map((r) => [r.n, r.method]),
    [
      [10, 'nsdn'],
      [10, 'ip'],
      [250, 'nsdn'],
      [250, 'ip-batch'],
    ],
  )
  const batch = rows[3]!
  assert.equal(batch.runs, 3)
  assert.equal(batch.verifiedRuns, 2)
  assert.ok(Math.abs(batch.create_s! - 1.65) < 1e-9, 'median of the two verified runs')
  assert.ok(Math.abs(batch.createRatio! - 1.65 / 0.6) < 1e-9)
  assert.ok(Math.abs(batch.teardownRatio! - 0.4 / 0.25) < 1e-9)
  assert.deepEqual(batch.errors, ['verify=FAIL'])
  assert.equal(rows[2]!.createRatio, 1)
  assert.ok(Math.abs(rows[1]!.createRatio! - 4) < 1e-9)
})

test('summary without nsdn or without any verified run: times from all runs, no ratio', () => {
  const rows = summarize([s('ip', 100, 2, 0.4, false), s('ip', 100, 3, 0.6, false)])
  assert.equal(rows.length, 1)
  assert.equal(rows[0]!.create_s, 2.5)
  assert.equal(rows[0]!.createRatio, null)
  assert.equal(rows[0]!.verifiedRuns, 0)
})

test('the table: a markdown row per method and N: medians, verified runs, ratios', () => {
  const lines = formatTable(summarize(samples)).split('\n')
  assert.equal(lines.length, 2 + 4)
  assert.match(lines[0]!, /^\| method \| N \| runs \| create s \| teardown s \| verified \|/)
  assert.match(lines[0]!, /create × slower than nsdn \| teardown × slower than nsdn \|$/)
  assert.equal(lines[4]!, '| nsdn | 250 | 3 | 0.600 | 0.250 | 3/3 | 1.0× | 1.0× |')
  assert.equal(
    lines[5]!,
    '| ip-batch | 250 | 3 | 1.650 | 0.400 | 2/3 (verify=FAIL) | 2.8× | 1.6× |',
  )
  const failed: Sample = { ...s('mininet', 5, 0, 0, false), create_s: null, teardown_s: null }
  const nulls = formatTable(summarize([failed]))
  assert.match(nulls, /\| mininet \| 5 \| 1 \| – \| – \| 0\/1 \(verify=FAIL\) \| – \| – \|/)
})

test('the JSON: method, n, create_s, teardown_s, verified (+ error when a run failed)', () => {
  const out = JSON.parse(formatJson(summarize(samples))) as Record<string, unknown>[]
  const nsdn = { method: 'nsdn', n: 250, create_s: 0.6, teardown_s: 0.25, verified: true }
  assert.deepEqual(out[2], nsdn)
  assert.deepEqual(out[3], {
    method: 'ip-batch',
    n: 250,
    create_s: 1.65,
    teardown_s: 0.4,
    verified: false,
    error: 'verify=FAIL',
  })
  const keys = ['method', 'n', 'create_s', 'teardown_s', 'verified', 'error']
  for (const o of out) for (const k of Object.keys(o)) assert.ok(keys.includes(k), k)
})

test('options: N repeated or as a list, defaults from the issue, unknown methods refused', () => {
  assert.deepEqual(parseOptions(['star']), {
    ns: [10, 100, 250, 1000],
    runs: 1,
    methods: ['nsdn', 'ip', 'ip-batch', 'pyroute2', 'mininet'],
    json: false,
  })
  const argv = ['star', '--n', '10,100', '--n', '250', '--runs', '3', '--json']
  const o = parseOptions([...argv, '--methods', 'nsdn,ip'])
  assert.deepEqual(o, { ns: [10, 100, 250], runs: 3, methods: ['nsdn', 'ip'], json: true })
  assert.throws(() => parseOptions(['star', '--methods', 'nsdn,ovs']), /unknown method "ovs"/)
  assert.throws(() => parseOptions(['star', '--n', '0']), /--n/)
  assert.throws(() => parseOptions(['star', '--runs', 'x']), /--runs/)
  assert.throws(() => parseOptions(['mesh']), /usage/)
})
