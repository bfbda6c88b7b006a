/**
 * The benchmark's text: host addresses, the anchors' `RESULT key=value ...` lines, and the
 * table / JSON the driver prints. Pure functions, unit-tested.
 * @module
 */

/** Address of host i (1-based), as the anchors' lib.sh: 10.77.1.1 .. 10.77.1.200, 10.77.2.1 .. */
export function hostAddr(i: number): string {
  return `10.77.${1 + Math.floor((i - 1) / 200)}.${1 + ((i - 1) % 200)}`
}

/** The method names the driver reports, in its default order. */
export const METHODS = ['nsdn', 'ip', 'ip-batch', 'pyroute2', 'mininet'] as const
export type Method = (typeof METHODS)[number]

/** One run of one method at one N. */
export interface Sample {
  method: Method
  n: number
  create_s: number | null
  teardown_s: number | null
  verified: boolean
  /** Why the run failed or was not verified (absent when verified). */
  error?: string
}

/** `RESULT a=1 b=x ...` as a key -> value map; undefined when the line is no RESULT line. */
export function parseResultLine(line: string): Map<string, string> | undefined {
  const words = line.trim().split(/\s+/)
  if (words[0] !== 'RESULT') return undefined
  const m = new Map<string, string>()
  for (const w of words.slice(1)) {
    const eq = w.indexOf('=')
    if (eq > 0) m.set(w.slice(0, eq), w.slice(eq + 1))
  }
  return m
}

function num(v: string | undefined): number | null {
  if (v === undefined || v === '') return null
  const x = Number(v)
  return Number.isFinite(x) ? x : null
}

/**
 * A method's output (stdout of its script) as a Sample. Verified means: a RESULT line, the
 * ping answered, the structure check passed, no errors counted, both times present.
 */
export function sampleFromOutput(method: Method, n: number, stdout: string): Sample {
  const line = stdout.split('\n').find((l) => l.startsWith('RESULT '))
  const r = line === undefined ? undefined : parseResultLine(line)
  if (!r)
    return { method, n, create_s: null, teardown_s: null, verified: false, error: 'no RESULT line' }
  const create = num(r.get('create_s'))
  const teardown = num(r.get('teardown_s'))
  const problems: string[] = []
  if (r.get('verify') !== 'ok') problems.push(`verify=${r.get('verify') ?? '?'}`)
  const struct = r.get('struct')
  if (struct !== undefined && struct !== 'ok') problems.push(`struct=${struct}`)
  if ((num(r.get('errors')) ?? 0) !== 0) problems.push(`errors=${r.get('errors')}`)
  if (create === null) problems.push('no create_s')
  if (teardown === null) problems.push('no teardown_s')
  const verified = problems.length === 0
  const s: Sample = { method, n, create_s: create, teardown_s: teardown, verified }
  if (problems.length) s.error = problems.join(' ')
  return s
}

export function median(xs: readonly number[]): number | null {
  if (xs.length === 0) return null
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

/**
 * One row of the summary: medians over the verified runs of one method at one N (over every
 * run that has a time when none verified).
 */
export interface Row {
  method: Method
  n: number
  runs: number
  verifiedRuns: number
  create_s: number | null
  teardown_s: number | null
  /** create median / nsdn's create median at the same N. */
  createRatio: number | null
  teardownRatio: number | null
  errors: string[]
}

/** Group samples by (N, method), take medians of verified runs, and ratios to nsdn. */
export function summarize(samples: readonly Sample[]): Row[] {
  const ns = [...new Set(samples.map((s) => s.n))].sort((a, b) => a - b)
  const rows: Row[] = []
  for (const n of ns) {
    const atN = samples.filter((s) => s.n === n)
    const pick = (m: Method, k: 'create_s' | 'teardown_s'): number | null => {
      const mine = atN.filter((s) => s.method === m && s[k] !== null)
      const ok = mine.filter((s) => s.verified)
      return median((ok.length ? ok : mine).map((s) => s[k]!))
    }
    const base = { c: pick('nsdn', 'create_s'), t: pick('nsdn', 'teardown_s') }
    for (const method of METHODS) {
      const mine = atN.filter((s) => s.method === method)
      if (mine.length === 0) continue
      const c = pick(method, 'create_s')
      const t = pick(method, 'teardown_s')
      rows.push({
        method,
        n,
        runs: mine.length,
        verifiedRuns: mine.filter((s) => s.verified).length,
        create_s: c,
        teardown_s: t,
        createRatio: c !== null && base.c ? c / base.c : null,
        teardownRatio: t !== null && base.t ? t / base.t : null,
        errors: [...new Set(mine.flatMap((s) => (s.error ? [s.error] : [])))],
      })
    }
  }
  return rows
}

const sec = (x: number | null): string => (x === null ? '–' : x < 10 ? x.toFixed(3) : x.toFixed(1))
const ratio = (x: number | null): string =>
  x === null ? '–' : `${x < 10 ? x.toFixed(1) : x.toFixed(0)}×`

/** The summary as a markdown table (medians over runs, ratios to nsdn at the same N). */
export function formatTable(rows: readonly Row[]): string {
  const head = [
    '| method | N | runs | create s | teardown s | verified | create × slower than nsdn ' +
      '| teardown × slower than nsdn |',
    '|---|---:|---:|---:|---:|---|---:|---:|',
  ]
  const body = rows.map((r) => {
    const v = `${r.verifiedRuns}/${r.runs}${r.errors.length ? ` (${r.errors.join('; ')})` : ''}`
    const cells = [r.method, r.n, r.runs, sec(r.create_s), sec(r.teardown_s), v]
    return `| ${cells.join(' | ')} | ${ratio(r.createRatio)} | ${ratio(r.teardownRatio)} |`
  })
  return [...head, ...body].join('\n')
}

/**
 * The --json output: one object per method and N (medians as in the table; verified only when
 * every run was), with `error` only when some run failed.
 */
export function formatJson(rows: readonly Row[]): string {
  const round = (x: number | null): number | null => (x === null ? null : Math.round(x * 1e4) / 1e4)
  return JSON.stringify(
    rows.map((r) => ({
      method: r.method,
      n: r.n,
      create_s: round(r.create_s),
      teardown_s: round(r.teardown_s),
      verified: r.runs > 0 && r.verifiedRuns === r.runs,
      ...(r.errors.length ? { error: r.errors.join('; ') } : {}),
    })),
    null,
    2,
  )
}
