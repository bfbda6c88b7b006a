/**
 * The drivers benchmark's results: one sample per variant in, the table and JSON out, with the
 * "reference / nsdn" ratios of the pairs that have a reference CNI plugin. Pure, unit-tested.
 * @module
 */

/** One variant's run: attach of all N namespaces, then detach of all N. */
export interface DriverSample {
  /** The nsdn driver, or the reference plugin's CNI type. */
  driver: string
  /** How it was run: `nsdn`, `nsdn x16`, `nsdn-cli`, `cni`. */
  variant: string
  /** Variants of one pair are compared with its reference ("bridge", "routed/ptp"). */
  pair?: string
  /** The reference CNI plugin of its pair. */
  reference: boolean
  n: number
  /** Wall time of the attach (detach) phase; null when the phase did not run. */
  attach_s: number | null
  detach_s: number | null
  verified: boolean
  error?: string
}

export interface DriverRow extends DriverSample {
  attach_ms: number | null
  detach_ms: number | null
  /** reference time / this variant's time: how many times faster nsdn is. */
  attach_ratio: number | null
  detach_ratio: number | null
}

const perAttachment = (s: number | null, n: number): number | null =>
  s === null || n < 1 ? null : (s * 1000) / n

/** Time of the reference over time of the variant; only between verified, finished runs. */
function ratio(ref: DriverSample | undefined, s: DriverSample, k: 'attach_s' | 'detach_s') {
  const a = ref?.[k]
  const b = s[k]
  if (!ref || s.reference || !ref.verified || !s.verified) return null
  return a === null || a === undefined || b === null || b <= 0 ? null : a / b
}

/** Per-attachment costs and, for each non-reference variant of a pair, the ratios. */
export function withRatios(samples: readonly DriverSample[]): DriverRow[] {
  return samples.map((s) => {
    const ref = samples.find((r) => r.reference && r.pair !== undefined && r.pair === s.pair)
    return {
      ...s,
      attach_ms: perAttachment(s.attach_s, s.n),
      detach_ms: perAttachment(s.detach_s, s.n),
      attach_ratio: ratio(ref, s, 'attach_s'),
      detach_ratio: ratio(ref, s, 'detach_s'),
    }
  })
}

const fixed = (x: number | null, digits: number): string => (x === null ? '–' : x.toFixed(digits))

function ratioCell(r: DriverRow, x: number | null): string {
  if (r.reference) return 'reference'
  if (r.pair === undefined) return 'no reference'
  return x === null ? '–' : `${x < 10 ? x.toFixed(2) : x.toFixed(1)}×`
}

/** The results as a markdown table. */
export function formatDriversTable(rows: readonly DriverRow[]): string {
  const head = [
    '| driver | variant | N | attach s | attach ms/attachment | detach s ' +
      '| detach ms/attachment | verified | reference / nsdn attach | reference / nsdn detach |',
    '|---|---|---:|---:|---:|---:|---:|---|---:|---:|',
  ]
  const body = rows.map((r) => {
    const v = r.verified ? 'yes' : `NO${r.error ? ` (${r.error})` : ''}`
    const cells = [
      r.driver,
      r.variant,
      r.n,
      fixed(r.attach_s, 3),
      fixed(r.attach_ms, 2),
      fixed(r.detach_s, 3),
      fixed(r.detach_ms, 2),
      v.replace(/\|/g, '/'),
      ratioCell(r, r.attach_ratio),
      ratioCell(r, r.detach_ratio),
    ]
    return `| ${cells.join(' | ')} |`
  })
  return [...head, ...body].join('\n')
}

/** The --json output: an array with one object per variant. */
export function formatDriversJson(rows: readonly DriverRow[]): string {
  const round = (x: number | null, k: number): number | null =>
    x === null ? null : Math.round(x * k) / k
  return JSON.stringify(
    rows.map((r) => ({
      driver: r.driver,
      variant: r.variant,
      ...(r.pair !== undefined ? { pair: r.pair } : {}),
      reference: r.reference,
      n: r.n,
      attach_s: round(r.attach_s, 1e4),
      attach_ms_per_attachment: round(r.attach_ms, 1e3),
      detach_s: round(r.detach_s, 1e4),
      detach_ms_per_attachment: round(r.detach_ms, 1e3),
      verified: r.verified,
      reference_over_nsdn_attach: round(r.attach_ratio, 1e3),
      reference_over_nsdn_detach: round(r.detach_ratio, 1e3),
      ...(r.error ? { error: r.error } : {}),
    })),
  )
}
