/**
 * The benchmark driver: `node dist/bench/main.js star [--n 10,100,250,1000] [--runs R]
 * [--methods nsdn,ip,ip-batch,pyroute2,mininet] [--json]`.
 *
 * For each run and N it runs every method back to back, each in its own fresh sandbox
 * (`nsdn sandbox`), method order rotated between runs, and reads the `RESULT` line each prints.
 * The methods other than nsdn are the scripts in bench/star/. Output: a table of medians and "× slower than nsdn" ratios, or with --json only a JSON
 * array on stdout. Progress goes to stderr.
 * `node dist/bench/main.js drivers [--n 250] [--json]`: see drivers.ts.
 * @module
 */
import { spawn, spawnSync } from 'node:child_process'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import {
  METHODS,
  type Method,
  type Sample,
  formatJson,
  formatTable,
  sampleFromOutput,
  summarize,
} from './format.js'

const REPO = path.resolve(__dirname, '..', '..')
/** The other methods' scripts (sources, not compiled: they stay in the repository's bench/). */
const STAR = path.join(REPO, 'bench', 'star')
const NSDN = path.join(REPO, 'dist', 'src', 'cli', 'main.js')
/** Debian's pyroute2 and mininet are installed for the system interpreter, not a pyenv one. */
const PY = '/usr/bin/python3'
const LIMIT_S = 300
const DEFAULT_N = [10, 100, 250, 1000]

const USAGE =
  'usage: node dist/bench/main.js star [--n N[,N...]]... [--runs R] ' +
  `[--methods ${METHODS.join(',')}] [--json]`

/** The command (inside the sandbox) that builds, checks and tears down a star of n hosts. */
function commandFor(m: Method, n: number, run: number): string[] {
  const a = (f: string): string => path.join(STAR, f)
  switch (m) {
    case 'nsdn':
      return [process.execPath, path.join(__dirname, 'star-nsdn.js'), String(n), String(run)]
    case 'ip':
      return ['bash', a('ip.sh'), String(n), String(run)]
    case 'ip-batch':
      return ['bash', a('ip-batch.sh'), String(n), String(run)]
    case 'pyroute2':
      return [PY, a('pyroute2-star.py'), String(n), String(run)]
    case 'mininet':
      return [PY, a('mininet-star.py'), String(n), String(run)]
  }
}

const ok = (argv: string[]): boolean =>
  spawnSync(argv[0]!, argv.slice(1), { stdio: 'ignore' }).status === 0
const onPath = (cmd: string): boolean => ok(['sh', '-c', 'command -v "$1"', 'sh', cmd])

/** Why a method cannot run here, or undefined when it can. */
export function missing(m: Method): string | undefined {
  if (!onPath('ping')) return 'ping is not installed (apt-get install iputils-ping)'
  if (!onPath('ip')) return 'ip is not installed (apt-get install iproute2)'
  if (m === 'nsdn') return undefined
  if (m === 'pyroute2' && !ok([PY, '-c', 'import pyroute2']))
    return `${PY} cannot import pyroute2 (apt-get install python3-pyroute2)`
  if (m === 'mininet') {
    if (!ok([PY, '-c', 'import mininet.net']))
      return `${PY} cannot import mininet (apt-get install mininet)`
    if (!onPath('brctl')) return 'brctl is not installed (apt-get install bridge-utils)'
  }
  return undefined
}

export interface Outcome {
  stdout: string
  stderr: string
  code: number | null
  timedOut: boolean
}

/**
 * Run argv in a fresh sandbox (`nsdn sandbox -- ARGV`), killed after LIMIT_S: the kill goes to
 * the process group, which holds the sandbox's PID 1, so its whole PID namespace goes down.
 */
export function runSandboxed(argv: string[]): Promise<Outcome> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [NSDN, 'sandbox', '--', ...argv], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    })
    let stdout = ''
    let stderr = ''
    let timedOut = false
    let done = false
    const finish = (code: number | null): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      resolve({ stdout, stderr, code, timedOut })
    }
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const timer = setTimeout(() => {
      timedOut = true
      if (child.pid) process.kill(-child.pid, 'SIGKILL')
    }, LIMIT_S * 1000)
    child.on('error', (e) => {
      stderr += e.message
      finish(null)
    })
    child.on('close', finish)
  })
}

export async function runOne(m: Method, n: number, run: number): Promise<Sample> {
  const o = await runSandboxed(commandFor(m, n, run))
  const s = sampleFromOutput(m, n, o.stdout)
  const last = o.stderr.trim().split('\n').filter(Boolean).slice(-1)[0]
  if (o.timedOut)
    return {
      ...s,
      verified: false,
      error: `timed out after ${LIMIT_S} s (last said: ${last ?? '-'})`,
    }
  if (!s.verified) {
    const why = [s.error, o.code ? `exit ${o.code}` : '', last ?? ''].filter(Boolean).join(': ')
    return { ...s, error: why.slice(0, 300) }
  }
  return s
}

function parseList(values: readonly string[], what: string): string[] {
  const out = values
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter(Boolean)
  if (out.length === 0) throw new Error(`${what}: empty list`)
  return out
}

interface Options {
  ns: number[]
  runs: number
  methods: Method[]
  json: boolean
}

export function parseOptions(argv: readonly string[]): Options {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      n: { type: 'string', multiple: true },
      runs: { type: 'string' },
      methods: { type: 'string' },
      json: { type: 'boolean' },
    },
  })
  if (positionals.length !== 1 || positionals[0] !== 'star') throw new Error(USAGE)
  const ns = values.n ? parseList(values.n, '--n').map(Number) : DEFAULT_N
  for (const n of ns)
    if (!Number.isInteger(n) || n < 1 || n > 40_000) throw new Error('--n: sizes are 1..40000')
  const runs = values.runs === undefined ? 1 : Number(values.runs)
  if (!Number.isInteger(runs) || runs < 1 || runs > 100) throw new Error('--runs: 1..100')
  const methods = values.methods ? parseList([values.methods], '--methods') : [...METHODS]
  for (const m of methods)
    if (!(METHODS as readonly string[]).includes(m))
      throw new Error(`--methods: unknown method "${m}" (known: ${METHODS.join(', ')})`)
  return { ns: [...new Set(ns)], runs, methods: methods as Method[], json: values.json === true }
}

function header(o: Options): string {
  const load = os.loadavg()[0]!.toFixed(2)
  return (
    `star benchmark ${new Date().toISOString()}: kernel ${os.release()}, ` +
    `${os.cpus().length} CPUs, ` +
    `load ${load}; N = ${o.ns.join(', ')}; ${o.runs} run(s); methods ${o.methods.join(', ')}`
  )
}

async function main(): Promise<void> {
  // `drivers`: attach/detach N namespaces per network driver (bench/drivers.ts).
  if (process.argv[2] === 'drivers') {
    process.exitCode = await (await import('./drivers.js')).driversMain(process.argv.slice(3))
    return
  }
  // `cni`: ADD/DEL wall time of the CNI plugins, agent and Node, vs the reference (bench/cni.ts).
  if (process.argv[2] === 'cni') {
    process.exitCode = await (await import('./cni.js')).cniMain(process.argv.slice(3))
    return
  }
  // `runtime`: containers against LXC (bench/runtime.ts).
  if (process.argv[2] === 'runtime') {
    process.exitCode = await (await import('./runtime.js')).runtimeMain(process.argv.slice(3))
    return
  }
  // `lab`: nsdn lab deploy/destroy against the anchors (bench/lab.ts).
  if (process.argv[2] === 'lab') {
    process.exitCode = await (await import('./lab.js')).labMain(process.argv.slice(3))
    return
  }
  let o: Options
  try {
    o = parseOptions(process.argv.slice(2))
  } catch (e) {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n${USAGE}\n`)
    process.exit(64)
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write('bench: needs root (it builds namespaces in throw-away sandboxes)\n')
    process.exit(77)
  }
  const skipped = new Map<Method, string>()
  for (const m of o.methods) {
    const why = missing(m)
    if (why) {
      skipped.set(m, why)
      process.stderr.write(`bench: skipping ${m}: ${why}\n`)
    }
  }
  const methods = o.methods.filter((m) => !skipped.has(m))
  const head = header(o)
  process.stderr.write(head + '\n')
  const samples: Sample[] = []
  let first = true
  for (let r = 1; r <= o.runs; r++) {
    for (const n of o.ns) {
      const k = (r - 1) % methods.length
      for (const m of [...methods.slice(k), ...methods.slice(0, k)]) {
        // Let the kernel finish destroying the previous sandbox's namespaces.
        if (!first) await sleep(1000)
        first = false
        const load = os.loadavg()[0]!.toFixed(1)
        const s = await runOne(m, n, r)
        samples.push(s)
        const t = (x: number | null): string => (x === null ? '–' : x.toFixed(3))
        process.stderr.write(
          `[run ${r}/${o.runs}] N=${n} ${m}: create ${t(s.create_s)} s, ` +
            `teardown ${t(s.teardown_s)} s, ` +
            `${s.verified ? 'verified' : `NOT verified (${s.error ?? '?'})`} (load ${load})\n`,
        )
      }
    }
  }
  const rows = summarize(samples)
  if (o.json) {
    process.stdout.write(formatJson(rows) + '\n')
    return
  }
  const notes = [...skipped].map(([m, why]) => `\n${m}: skipped, ${why}`).join('')
  const end = `1-minute load at the end: ${os.loadavg()[0]!.toFixed(2)}`
  process.stdout.write(`${head}\n\n${formatTable(rows)}\n${notes}\n${end}\n`)
}

if (require.main === module) void main()
