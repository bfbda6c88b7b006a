/**
 * The live web view's cost on a big lab: deploy it (the nsdn CLI, another process), then hold
 * openLive in this process for a while and measure what a server holding it pays: the time to
 * open it, its resident memory (RSS) and JS heap, the CPU it takes per second of watching (the
 * counter dumps of every namespace every rateMs, and the batches), the batches delivered, and
 * how long a link set down by hand takes to show.
 *
 * Usage: node dist/bench/web-live.js [FILE] [SECONDS]  (default: scenarios/star-250.yaml, 30)
 * Outside a sandbox it re-runs itself in one (src/sandbox.ts). Prints one RESULT line.
 * @module
 */
import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { inSandbox, runSandboxed } from '../src/sandbox.js'
import { openLive } from '../src/web/live.js'

const MAIN = path.resolve(__dirname, '../src/cli/main.js')
const nsdn = (...args: string[]): void => {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`nsdn ${args.join(' ')}: ${r.stdout}${r.stderr}`)
}
const mb = (n: number): string => (n / 2 ** 20).toFixed(1)

async function main(): Promise<void> {
  const file = path.resolve(
    process.argv[2] ?? path.join(__dirname, '../../scenarios/star-250.yaml'),
  )
  const seconds = Number(process.argv[3] ?? 30)
  const name = (/^name:\s*(\S+)/m.exec(fs.readFileSync(file, 'utf8')) ?? [])[1]!
  process.stderr.write(`deploying ${file}\n`)
  nsdn('lab', 'deploy', file)
  try {
    const rssBefore = process.memoryUsage().rss
    const t0 = performance.now()
    const live = await openLive(name)
    const openMs = performance.now() - t0
    const snap = live.snapshot()
    let batches = 0
    let changes = 0
    let biggest = 0
    let sawDown = 0
    const downAt = { t: 0 }
    live.onChange((b) => {
      batches++
      changes += b.length
      biggest = Math.max(biggest, b.length)
      if (
        downAt.t &&
        !sawDown &&
        b.some(
          (c) => c.type === 'if' && c.if.ns === `${name}-h1` && c.if.name === 'eth0' && !c.if.up,
        )
      )
        sawDown = performance.now() - downAt.t
    })
    const cpu0 = process.cpuUsage()
    const w0 = performance.now()
    let rssMax = 0
    for (let s = 0; s < seconds; s++) {
      await new Promise((r) => setTimeout(r, 1000))
      rssMax = Math.max(rssMax, process.memoryUsage().rss)
      if (s === Math.floor(seconds / 2)) {
        downAt.t = performance.now()
        execFileSync('ip', ['-n', `${name}-h1`, 'link', 'set', 'eth0', 'down'])
      }
    }
    const cpu = process.cpuUsage(cpu0)
    const wall = performance.now() - w0
    const mem = process.memoryUsage()
    await live.close()
    const f = (x: number): string => x.toFixed(0)
    process.stdout.write(
      `RESULT lab=${name} namespaces=${new Set(snap.ifs.map((i) => i.ns)).size} ifs=${snap.ifs.length} ` +
        `routes=${snap.routes.length} open_ms=${f(openMs)} rss_before_mb=${mb(rssBefore)} ` +
        `rss_end_mb=${mb(mem.rss)} rss_max_mb=${mb(rssMax)} heap_used_mb=${mb(mem.heapUsed)} ` +
        `heap_total_mb=${mb(mem.heapTotal)} external_mb=${mb(mem.external)} ` +
        `cpu_pct=${((100 * (cpu.user + cpu.system)) / 1000 / wall).toFixed(1)} ` +
        `held_s=${seconds} batches=${batches} changes=${changes} biggest_batch=${biggest} ` +
        `down_seen_ms=${sawDown ? f(sawDown) : 'never'}\n`,
    )
  } finally {
    nsdn('lab', 'destroy', name)
  }
}

if (!inSandbox())
  process.exit(runSandboxed([process.execPath, __filename, ...process.argv.slice(2)]))
main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`)
    process.exit(1)
  },
)
