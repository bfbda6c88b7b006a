/**
 * `node dist/bench/main.js lab [--n 250,1000] [--chain 100] [--runs R] [--methods nsdn,ip,...]
 * [--json]`: the lab
 * engine's speed. Stars of N hosts: the whole `nsdn lab deploy scenarios/star-N.yaml` and
 * `nsdn lab destroy` commands (Node start included, ready = ports with carrier, checked by
 * ping), next to the same star built by `ip -batch` from the lab's explain script (the same
 * settings: one queue a veth end, no IPv6 link-local, no multicast snooping) and the star
 * anchors (nsdn's library, one `ip` per operation, `ip -batch`, pyroute2, Mininet: the
 * kernel's defaults) in the same run, each in a fresh sandbox. A chain of routers: nsdn lab
 * against its own explain script run by bash (one process per operation) and batched
 * (`ip -batch` per namespace): the anchors have no chain.
 * @module
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { METHODS, type Method, median, parseResultLine } from './format.js'
import { missing, runOne, runSandboxed } from './main.js'

const SCENARIOS = path.resolve(__dirname, '../../scenarios')
const RUNNER = path.join(__dirname, 'lab-run.js')
const LAB_METHODS = ['nsdn-lab', 'ip', 'ip-batch'] as const
const SAME_STAR = 'ip -batch, same star (explain script)'

interface Row {
  topology: string
  method: string
  create: number[]
  teardown: number[]
  failures: string[]
}

/** A chain of n routers, r1 .. rn, a /30 per hop; r1 reaches r60 (or rn) and hears back. */
export function chainYaml(n: number): string {
  const out = [
    '# A chain of routers for the benchmark: each routes onward by default and back to r1.',
    `name: chain`,
    'defaults: { kind: router }',
    'nodes:',
  ]
  const sub = (i: number): string => `10.${100 + (i >> 8)}.${i & 255}`
  for (let i = 1; i <= n; i++) {
    const addrs = [
      i > 1 ? `eth0: ${sub(i - 1)}.2/30` : '',
      i < n ? `eth1: ${sub(i)}.1/30` : '',
    ].filter(Boolean)
    const routes = [
      i < n ? `{ to: default, via: ${sub(i)}.2 }` : '',
      i > 2 ? `{ to: ${sub(1)}.0/30, via: ${sub(i - 1)}.1 }` : '',
    ].filter(Boolean)
    out.push(
      `  r${i}: { addresses: { ${addrs.join(', ')} }${routes.length ? `, routes: [${routes.join(', ')}]` : ''} }`,
    )
  }
  out.push('links:')
  for (let i = 1; i < n; i++) out.push(`  - endpoints: ["r${i}:eth1", "r${i + 1}:eth0"]`)
  // Replies leave with Linux's default TTL of 64: r1 can hear back from at most r65.
  const far = Math.min(n, 60)
  out.push('checks:', `  - { from: r1, to: ${sub(far - 1)}.2, expect: reach }`, '')
  return out.join('\n')
}

async function labRun(
  method: string,
  file: string,
  run: number,
): Promise<{ c: number; t: number } | string> {
  const o = await runSandboxed([process.execPath, RUNNER, method, file, String(run)])
  const line = o.stdout.split('\n').find((l) => l.startsWith('RESULT '))
  const r = line ? parseResultLine(line) : undefined
  if (!r || r.get('verify') !== 'ok' || r.get('errors') !== '0')
    return `${o.timedOut ? 'timed out ' : ''}${line ?? 'no RESULT'} ${o.stderr.trim().split('\n').slice(-1)[0] ?? ''}`.slice(
      0,
      200,
    )
  return { c: Number(r.get('create_s')), t: Number(r.get('teardown_s')) }
}

const f = (x: number | null, d = 3): string => (x === null ? '–' : x.toFixed(d))

export async function labMain(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      n: { type: 'string' },
      chain: { type: 'string' },
      runs: { type: 'string' },
      methods: { type: 'string' },
      json: { type: 'boolean' },
    },
  })
  const ns = (values.n ?? '250,1000').split(',').map(Number)
  const chain = Number(values.chain ?? 100)
  const runs = Number(values.runs ?? 1)
  const rows = new Map<string, Row>()
  const row = (topology: string, method: string): Row => {
    const k = `${topology}|${method}`
    if (!rows.has(k)) rows.set(k, { topology, method, create: [], teardown: [], failures: [] })
    return rows.get(k)!
  }
  // the 1-minute load when each topology starts: the table says how busy the machine was
  const loads: number[] = []
  const wanted = values.methods ? values.methods.split(',') : [...METHODS]
  const anchors = METHODS.filter((m) => wanted.includes(m) && !missing(m)) as Method[]
  for (const m of METHODS)
    if (missing(m)) process.stderr.write(`bench lab: skipping ${m}: ${missing(m)}\n`)
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nsdn-bench-'))
  const chainFile = path.join(tmp, `chain-${chain}.yaml`)
  fs.writeFileSync(chainFile, chainYaml(chain))
  const note = (what: string, s: { c: number; t: number } | string): void =>
    void process.stderr.write(
      `  ${what}: ${typeof s === 'string' ? `FAILED ${s}` : `deploy ${f(s.c)} s, destroy ${f(s.t)} s`}\n`,
    )
  for (let run = 1; run <= runs; run++) {
    for (const n of ns) {
      const topo = `star ${n}`
      const file = path.join(SCENARIOS, `star-${n}.yaml`)
      loads.push(os.loadavg()[0]!)
      process.stderr.write(`[run ${run}/${runs}] ${topo} (load ${os.loadavg()[0]!.toFixed(1)})\n`)
      const s = await labRun('nsdn-lab', file, run)
      note('nsdn lab', s)
      const r = row(topo, 'nsdn lab (CLI)')
      if (typeof s === 'string') r.failures.push(s)
      else r.create.push(s.c), r.teardown.push(s.t)
      // The same star to the last setting (queues, link-local, snooping): the lab's own
      // explain script, fed to ip -batch as a user of iproute2 would.
      await new Promise((res) => setTimeout(res, 1000))
      const same = await labRun('ip-batch', file, run)
      note(SAME_STAR, same)
      const sr = row(topo, SAME_STAR)
      if (typeof same === 'string') sr.failures.push(same)
      else sr.create.push(same.c), sr.teardown.push(same.t)
      for (const m of anchors) {
        await new Promise((res) => setTimeout(res, 1000))
        const a = await runOne(m, n, run)
        const label = m === 'nsdn' ? 'nsdn library' : m
        note(label, a.verified ? { c: a.create_s!, t: a.teardown_s! } : (a.error ?? 'not verified'))
        const ar = row(topo, label)
        if (a.verified) ar.create.push(a.create_s!), ar.teardown.push(a.teardown_s!)
        else ar.failures.push(a.error ?? 'not verified')
      }
    }
    if (chain > 0) {
      const topo = `chain ${chain}`
      loads.push(os.loadavg()[0]!)
      process.stderr.write(`[run ${run}/${runs}] ${topo} (load ${os.loadavg()[0]!.toFixed(1)})\n`)
      for (const m of LAB_METHODS) {
        const s = await labRun(m, chainFile, run)
        const label =
          m === 'nsdn-lab'
            ? 'nsdn lab (CLI)'
            : m === 'ip'
              ? 'ip (explain script)'
              : 'ip -batch (batched script)'
        note(label, s)
        const r = row(topo, label)
        if (typeof s === 'string') r.failures.push(s)
        else r.create.push(s.c), r.teardown.push(s.t)
      }
    }
  }
  fs.rmSync(tmp, { recursive: true, force: true })
  const out = [...rows.values()].map((r) => {
    const base = rows.get(`${r.topology}|nsdn lab (CLI)`)!
    const c = median(r.create)
    const t = median(r.teardown)
    const bc = median(base.create)
    const bt = median(base.teardown)
    return {
      topology: r.topology,
      method: r.method,
      deploy_s: c,
      destroy_s: t,
      deploy_x: c !== null && bc ? c / bc : null,
      destroy_x: t !== null && bt ? t / bt : null,
      ok_runs: r.create.length,
      failures: r.failures,
    }
  })
  if (values.json) {
    process.stdout.write(JSON.stringify(out, null, 2) + '\n')
    return 0
  }
  const at = (topology: string, method: string): (typeof out)[number] | undefined =>
    out.find((r) => r.topology === topology && r.method === method)
  const ratio = (x: number | null | undefined, y: number | null | undefined): string =>
    x && y ? `${(x / y).toFixed(1)}x` : '–'
  const lab250 = at('star 250', 'nsdn lab (CLI)')
  const targets = [
    `Targets: star 250 deploy ${ratio(at('star 250', SAME_STAR)?.deploy_s, lab250?.deploy_s)} ` +
      `faster than ip -batch building the same star (>= 2.3x; the ip-batch anchor, with the ` +
      `kernel's defaults: ${ratio(at('star 250', 'ip-batch')?.deploy_s, lab250?.deploy_s)}), destroy ${ratio(at('star 250', 'mininet')?.destroy_s, lab250?.destroy_s)} ` +
      `faster than Mininet (>= 20x); star 1000 deploy ${f(at('star 1000', 'nsdn lab (CLI)')?.deploy_s ?? null, 2)} s (< 4 s).`,
  ]
  const lo = Math.min(...loads, os.loadavg()[0]!)
  const hi = Math.max(...loads, os.loadavg()[0]!)
  const lines = [
    `lab benchmark ${new Date().toISOString()}: kernel ${os.release()}, ${os.cpus().length} CPUs, 1-minute load ${lo.toFixed(1)}-${hi.toFixed(1)}, ${runs} run(s), medians`,
    '',
    '| topology | method | deploy s | destroy s | deploy: x slower than nsdn lab | destroy: x slower than nsdn lab |',
    '|---|---|---:|---:|---:|---:|',
    ...out.map(
      (r) =>
        `| ${r.topology} | ${r.method} | ${f(r.deploy_s)} | ${f(r.destroy_s)} | ${f(r.deploy_x, 1)}x | ${f(r.destroy_x, 1)}x |` +
        (r.failures.length ? ` (${r.failures.length} failed: ${r.failures[0]})` : ''),
    ),
    '',
    ...targets,
  ]
  process.stdout.write(lines.join('\n') + '\n')
  return out.some((r) => r.failures.length) ? 1 : 0
}
