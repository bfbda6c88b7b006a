/**
 * A lab's checks, run against the live lab: ping for reachability (must answer) and isolation
 * (must stay silent), iperf3 for throughput floors and ceilings. Pings run in parallel; iperf3
 * runs one at a time, so measurements do not share the CPU.
 * @module
 */
import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process'
import { NetNs, spawnInNetns } from '../netns/netns.js'
import type { Check, Lab, Node } from './resolve.js'

export interface CheckResult {
  check: Check
  ok: boolean
  /** What was seen: "answered", "silent", "9.6 Mbit/s". */
  detail: string
}

/** Start argv in the node's namespace (or in nsdn's own for root). */
function start(node: Node, argv: string[], capture = false): ChildProcess {
  const opts: SpawnOptions = { stdio: capture ? ['ignore', 'pipe', 'pipe'] : 'ignore' }
  if (!node.ns) return spawn(argv[0]!, argv.slice(1), opts)
  const ns = NetNs.open(node.ns)
  try {
    return spawnInNetns(ns, argv, opts)
  } finally {
    ns.close()
  }
}

function run(node: Node, argv: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const c = start(node, argv, true)
    let out = ''
    c.stdout?.on('data', (d: Buffer) => (out += d.toString()))
    c.on('error', (e) => resolve({ code: null, out: e.message }))
    c.on('close', (code) => resolve({ code, out }))
  })
}

/** TTL 255: a lab may be deeper than the default 64 hops (a chain of 100 routers). */
const ping = (from: Node, addr: string, count: number): Promise<boolean> =>
  run(from, ['ping', '-n', '-q', '-t', '255', '-c', String(count), '-W', '1', addr]).then(
    (r) => r.code === 0,
  )

async function reach(c: Check): Promise<CheckResult> {
  // A fresh port may drop the very first frames (ARP): a few tries.
  for (let i = 0; i < 5; i++)
    if (await ping(c.from, c.addr, 1)) return { check: c, ok: true, detail: 'answered' }
  return { check: c, ok: false, detail: 'no answer to 5 pings' }
}

async function isolated(c: Check): Promise<CheckResult> {
  const answered = await ping(c.from, c.addr, 2)
  return { check: c, ok: !answered, detail: answered ? 'answered' : 'silent' }
}

const mbit = (bps: number): string => `${(bps / 1e6).toFixed(1)} Mbit/s`

interface Iperf {
  error?: string
  end?: { sum_received?: { bits_per_second: number } }
}

/** One iperf3 run against a fresh one-off server; the rate, or why there is none. */
async function iperfOnce(from: Node, server: Node, addr: string): Promise<number | string> {
  const srv = start(server, ['iperf3', '-s', '-1', '-B', addr])
  try {
    let why = 'iperf3 could not connect'
    for (let i = 0; i < 20; i++) {
      const r = await run(from, ['iperf3', '-c', addr, '-t', '2', '-J'])
      let j: Iperf = {}
      try {
        j = JSON.parse(r.out) as Iperf
      } catch {
        why = `iperf3: ${r.out.trim().slice(0, 80) || 'no output'}`
      }
      const bps = j.end?.sum_received?.bits_per_second
      if (r.code === 0 && bps !== undefined) return bps
      if (j.error) why = `iperf3: ${j.error}`
      // Not listening yet (refused): try again; a run that failed after connecting ended the
      // one-off server: start another.
      if (!/refused/.test(why)) break
      await new Promise((res) => setTimeout(res, 100))
    }
    return why
  } finally {
    srv.kill()
  }
}

async function throughput(lab: Lab, c: Check): Promise<CheckResult> {
  const server = lab.nodes.find((n) => n.name === c.to)!
  let got: number | string = ''
  for (let attempt = 0; attempt < 3 && typeof got !== 'number'; attempt++)
    got = await iperfOnce(c.from, server, c.addr)
  if (typeof got === 'string') return { check: c, ok: false, detail: got }
  const ok = (c.min === undefined || got >= c.min) && (c.max === undefined || got <= c.max)
  return { check: c, ok, detail: mbit(got) }
}

export async function verify(lab: Lab): Promise<CheckResult[]> {
  const pings = await Promise.all(
    lab.checks
      .filter((c) => c.expect !== 'throughput')
      .map((c) => (c.expect === 'reach' ? reach(c) : isolated(c))),
  )
  const rates: CheckResult[] = []
  for (const c of lab.checks.filter((c) => c.expect === 'throughput'))
    rates.push(await throughput(lab, c))
  return lab.checks.map((c) => [...pings, ...rates].find((r) => r.check === c)!)
}

/** One line per check: "ok   h1 -> h2 (10.0.0.2): reach: answered". */
export function describeCheck(r: CheckResult): string {
  const c = r.check
  const to = c.to === c.addr ? c.addr : `${c.to} (${c.addr})`
  const bounds = [
    c.min !== undefined ? `>= ${mbit(c.min)}` : '',
    c.max !== undefined ? `<= ${mbit(c.max)}` : '',
  ]
    .filter(Boolean)
    .join(' ')
  return `${r.ok ? 'ok  ' : 'FAIL'} ${c.from.name} -> ${to}: ${c.expect}${bounds ? ` ${bounds}` : ''}: ${r.detail}`
}
