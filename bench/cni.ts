/**
 * The CNI plugin benchmark: wall time of ADD and DEL (N each, default 30) of one container, as a
 * runtime calls a plugin (exec with the CNI environment and the config on stdin), for nsdn's
 * bridge and routed plugins through the resident agent (the C shim forwards the call) and
 * through the Node fallback (no agent), against the reference bridge and ptp plugins of
 * Debian's containernetworking-plugins, in the same run, calls interleaved so that the
 * machine's load falls on every variant alike; and Node starting an empty script, the floor
 * of the fallback. Reports median and p90 and the ratio of each
 * median to its reference's.
 *
 * Usage: node dist/bench/main.js cni [--n 30] [--json]. Runs in a throw-away sandbox.
 * @module
 */
import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { installPlugins } from '../src/cni/install.js'
import { errorMessage } from '../src/errors.js'
import { NetNs } from '../src/netns/netns.js'
import { inSandbox, runSandboxed } from '../src/sandbox.js'
import { median } from './format.js'

const REFERENCE = '/usr/lib/cni'
const BIN = '/run/nsdn-bench-bin'
const SOCK = '/run/nsdn-bench-agent.sock'
const DATA = '/run/nsdn-bench-ipam'
const CLI = path.resolve(__dirname, '../src/cli/main.js')

interface Variant {
  id: string
  exe: string
  /** The reference variant whose median is 1.0x. */
  ref: string
  conf: Record<string, unknown>
  env: Record<string, string>
  args?: string[]
}

const hostLocal = (subnet: string) => ({ type: 'host-local', dataDir: DATA, subnet })
const nsdnIpam = (subnet: string) => ({ type: 'nsdn-ipam', dataDir: DATA, subnet })
const bridge = (name: string, br: string, ipam: object) => ({
  cniVersion: '1.0.0',
  name,
  bridge: br,
  isGateway: true,
  ipam,
})
const routed = (name: string, ipam: object) => ({ cniVersion: '1.0.0', name, ipam })
const AGENT = {}
const NODE = { NSDN_CNI_SOCKET: '/run/nsdn-bench-no-agent.sock' }

function variants(): Variant[] {
  const v = (id: string, exe: string, ref: string, conf: object, env: object): Variant => ({
    id,
    exe,
    ref,
    conf: conf as Record<string, unknown>,
    env: env as Record<string, string>,
  })
  const ref = (t: string) => path.join(REFERENCE, t)
  const ours = (t: string) => path.join(BIN, t)
  return [
    v(
      'ref bridge',
      ref('bridge'),
      'ref bridge',
      bridge('b0', 'bb0', hostLocal('10.100.0.0/16')),
      {},
    ),
    v(
      'nsdn-bridge agent',
      ours('nsdn-bridge'),
      'ref bridge',
      bridge('b1', 'bb1', nsdnIpam('10.101.0.0/16')),
      AGENT,
    ),
    v(
      'nsdn-bridge agent, host-local exec',
      ours('nsdn-bridge'),
      'ref bridge',
      bridge('b2', 'bb2', hostLocal('10.102.0.0/16')),
      AGENT,
    ),
    v(
      'nsdn-bridge node',
      ours('nsdn-bridge'),
      'ref bridge',
      bridge('b3', 'bb3', nsdnIpam('10.103.0.0/16')),
      NODE,
    ),
    // What Node's own start costs under the same load: the floor of the Node fallback.
    {
      ...v('node -e 0 (Node start alone)', process.execPath, 'ref bridge', {}, {}),
      args: ['-e', '0'],
    },
    v('ref ptp', ref('ptp'), 'ref ptp', routed('p0', hostLocal('10.110.0.0/16')), {}),
    v(
      'nsdn-routed agent',
      ours('nsdn-routed'),
      'ref ptp',
      routed('p1', nsdnIpam('10.111.0.0/16')),
      AGENT,
    ),
    v(
      'nsdn-routed node',
      ours('nsdn-routed'),
      'ref ptp',
      routed('p3', nsdnIpam('10.113.0.0/16')),
      NODE,
    ),
  ]
}

/** One call, timed around the exec as a runtime would see it. */
function call(v: Variant, command: string, id: string): number {
  const t0 = performance.now()
  const r = spawnSync(v.exe, v.args ?? [], {
    input: JSON.stringify({ ...v.conf, type: path.basename(v.exe) }),
    env: {
      PATH: process.env.PATH,
      CNI_COMMAND: command,
      CNI_CONTAINERID: id,
      CNI_NETNS: `/run/netns/${id}`,
      CNI_IFNAME: 'eth0',
      CNI_PATH: `${BIN}:${REFERENCE}`,
      ...v.env,
    },
    encoding: 'utf8',
  })
  const ms = performance.now() - t0
  if (r.status !== 0) throw new Error(`${v.id} ${command} ${id}: ${r.stdout}${r.stderr}`)
  return ms
}

const p90 = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.ceil(s.length * 0.9) - 1)]!
}

interface Row {
  id: string
  add: { median: number; p90: number; ratio: number }
  del: { median: number; p90: number; ratio: number }
}

async function run(n: number): Promise<Row[]> {
  fs.mkdirSync('/run/netns', { recursive: true })
  installPlugins(BIN, { socket: SOCK })
  const agent = spawn(process.execPath, [CLI, 'cni', 'agent', '--socket', SOCK], {
    stdio: 'inherit',
  })
  try {
    for (let i = 0; i < 100 && !fs.existsSync(SOCK); i++)
      await new Promise((r) => setTimeout(r, 100))
    const vs = variants()
    const times = new Map(vs.map((v) => [v.id, { add: [] as number[], del: [] as number[] }]))
    const nsOf = (v: Variant, i: number): string => `bn-${vs.indexOf(v)}-${i}`
    for (const v of vs) for (let i = 0; i < n; i++) NetNs.create(nsOf(v, i)).close()
    // One warm-up call each (the agent loads a driver's code on its first call).
    for (const v of vs) {
      call(v, 'ADD', nsOf(v, 0))
      call(v, 'DEL', nsOf(v, 0))
    }
    for (const cmd of ['ADD', 'DEL'] as const)
      for (let i = 0; i < n; i++)
        for (const v of vs)
          times.get(v.id)![cmd === 'ADD' ? 'add' : 'del'].push(call(v, cmd, nsOf(v, i)))
    const med = (id: string, k: 'add' | 'del') => median(times.get(id)![k])!
    return vs.map((v) => {
      const t = times.get(v.id)!
      const stat = (k: 'add' | 'del') => ({
        median: med(v.id, k),
        p90: p90(t[k]),
        ratio: med(v.id, k) / med(v.ref, k),
      })
      return { id: v.id, add: stat('add'), del: stat('del') }
    })
  } finally {
    agent.kill('SIGTERM')
  }
}

function table(rows: Row[], n: number): string {
  const f = (x: number) => x.toFixed(1)
  const head =
    `| plugin (${n} ADD, ${n} DEL) | ADD median ms | ADD p90 ms | ADD x ref | ` +
    `DEL median ms | DEL p90 ms | DEL x ref |\n|---|---:|---:|---:|---:|---:|---:|`
  const body = rows.map(
    (r) =>
      `| ${r.id} | ${f(r.add.median)} | ${f(r.add.p90)} | ${r.add.ratio.toFixed(2)}x | ` +
      `${f(r.del.median)} | ${f(r.del.p90)} | ${r.del.ratio.toFixed(2)}x |`,
  )
  return [head, ...body].join('\n')
}

export async function cniMain(argv: readonly string[]): Promise<number> {
  let n = 30
  let json = false
  try {
    const { values } = parseArgs({
      args: [...argv],
      options: { n: { type: 'string' }, json: { type: 'boolean' } },
    })
    if (values.n !== undefined) n = Number(values.n)
    if (!Number.isInteger(n) || n < 2) throw new Error(`--n: a whole number >= 2, got ${values.n}`)
    json = values.json === true
  } catch (e) {
    process.stderr.write(
      `${errorMessage(e)}\nusage: node dist/bench/main.js cni [--n 30] [--json]\n`,
    )
    return 64
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write('bench cni: needs root (it runs in a throw-away sandbox)\n')
    return 77
  }
  if (!inSandbox()) return runSandboxed([process.execPath, __filename, ...argv])
  const rows = await run(n)
  if (json) process.stdout.write(JSON.stringify(rows, null, 2) + '\n')
  else
    process.stdout.write(
      `CNI plugin calls, wall time per exec; ${os.cpus().length} CPUs, ` +
        `load ${os.loadavg()[0]!.toFixed(2)} at the end\n\n${table(rows, n)}\n`,
    )
  return 0
}

if (require.main === module) void cniMain(process.argv.slice(2)).then((c) => (process.exitCode = c))
