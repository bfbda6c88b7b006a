/** The drivers benchmark's options, variants, ratios and output. No timing. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  type DriverSample,
  formatDriversJson,
  formatDriversTable,
  withRatios,
} from '../../bench/drivers-report.js'
import { allVariants } from '../../bench/drivers-variants.js'
import { parseDriversOptions } from '../../bench/drivers.js'

const sample = (o: Partial<DriverSample>): DriverSample => ({
  driver: 'bridge',
  variant: 'nsdn',
  pair: 'bridge',
  reference: false,
  n: 250,
  attach_s: 1,
  detach_s: 2,
  verified: true,
  ...o,
})

/** A variant without a reference plugin (ovs, vlan). */
function unpaired(o: Partial<DriverSample>): DriverSample {
  const { pair: _, ...s } = sample({ driver: 'ovs', ...o })
  return s
}

test('options: N defaults to 250 and every variant; --variants picks, unknown ones fail', () => {
  const d = parseDriversOptions([])
  assert.equal(d.n, 250)
  assert.equal(d.json, false)
  assert.deepEqual(
    d.variants.map((v) => v.id),
    allVariants().map((v) => v.id),
  )
  const o = parseDriversOptions(['--n', '10', '--variants', 'cni-ptp,routed', '--json'])
  assert.equal(o.n, 10)
  assert.equal(o.json, true)
  assert.deepEqual(
    o.variants.map((v) => v.id),
    ['cni-ptp', 'routed'],
  )
  assert.throws(() => parseDriversOptions(['--variants', 'bridge,nope']), /unknown variant "nope"/)
  assert.throws(() => parseDriversOptions(['--n', '1']), /--n/)
  assert.throws(() => parseDriversOptions(['--n', 'x']), /--n/)
  assert.throws(() => parseDriversOptions(['star']))
})

test('variants: each pair has one reference, and it uses its own bridge and subnet', () => {
  const all = allVariants()
  assert.equal(new Set(all.map((v) => v.id)).size, all.length)
  const pairs = new Set(all.flatMap((v) => (v.pair ? [v.pair] : [])))
  assert.deepEqual([...pairs].sort(), ['bridge', 'routed/ptp'])
  for (const p of pairs) {
    const refs = all.filter((v) => v.pair === p && v.reference)
    assert.equal(refs.length, 1, p)
    const ref = refs[0]!.conf('/run/x')
    for (const v of all.filter((x) => x.pair === p && !x.reference)) {
      const c = v.conf('/run/y')
      assert.equal(c.cniVersion, ref.cniVersion)
      assert.notEqual(c.name, ref.name)
      assert.notEqual(c.bridge ?? 'none', ref.bridge ?? 'other')
      const sub = (x: Record<string, unknown>): unknown => (x.ipam as { subnet: string }).subnet
      assert.notEqual(sub(c), sub(ref))
      assert.equal((c.ipam as { dataDir: string }).dataDir, '/run/y')
    }
  }
  const bridge = all.find((v) => v.id === 'bridge')!.conf('/run/d')
  assert.equal(bridge.isGateway, true)
  assert.equal((bridge.ipam as { subnet: string }).subnet, '10.88.0.0/16')
  const vlan = all.find((v) => v.id === 'vlan')!.conf('/run/d')
  assert.equal(vlan.backend, 'ovs')
  assert.equal(vlan.vlanId, 100)
})

test('ratios: reference time / nsdn time within a pair, only between verified runs', () => {
  const rows = withRatios([
    sample({ driver: 'bridge', variant: 'cni', reference: true, attach_s: 5, detach_s: 6 }),
    sample({ attach_s: 1, detach_s: 2 }),
    sample({ variant: 'nsdn-cli', attach_s: 10, detach_s: 12 }),
    sample({ variant: 'nsdn x16', verified: false, error: 'boom' }),
    unpaired({ attach_s: 3 }),
  ])
  assert.deepEqual(
    rows.map((r) => [r.attach_ratio, r.detach_ratio]),
    [
      [null, null],
      [5, 3],
      [0.5, 0.5],
      [null, null],
      [null, null],
    ],
  )
  assert.equal(rows[1]!.attach_ms, 4)
  assert.equal(rows[1]!.detach_ms, 8)
  const unverifiedRef = withRatios([
    sample({ reference: true, verified: false }),
    sample({ attach_s: 0.5 }),
  ])
  assert.equal(unverifiedRef[1]!.attach_ratio, null)
})

test('table and JSON: one row per variant, failures say why, ratios say which way', () => {
  const rows = withRatios([
    sample({ driver: 'bridge', variant: 'cni', reference: true, attach_s: 5, detach_s: 6 }),
    sample({ attach_s: 1, detach_s: 2 }),
    unpaired({ verified: false, error: 'a | b', detach_s: null }),
  ])
  const lines = formatDriversTable(rows).split('\n')
  assert.equal(lines.length, 5)
  assert.match(lines[0]!, /reference \/ nsdn attach/)
  assert.match(lines[2]!, /^\| bridge \| cni \| 250 \| 5\.000 \| 20\.00 \| .* \| reference \|/)
  assert.match(lines[3]!, /\| yes \| 5\.00× \| 3\.00× \|$/)
  assert.match(lines[4]!, /\| – \| – \| NO \(a \/ b\) \| no reference \| no reference \|$/)
  const json = JSON.parse(formatDriversJson(rows)) as Record<string, unknown>[]
  assert.equal(json.length, 3)
  assert.equal(json[1]!.attach_ms_per_attachment, 4)
  assert.equal(json[1]!.reference_over_nsdn_attach, 5)
  assert.equal(json[2]!.verified, false)
  assert.equal(json[2]!.error, 'a | b')
  assert.equal(json[2]!.detach_s, null)
  assert.equal('pair' in json[2]!, false)
})
