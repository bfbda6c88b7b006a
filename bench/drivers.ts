/**
 * The drivers benchmark: attach N named namespaces to a network and detach them again, with each
 * nsdn driver (in-process, one by one and 16 at a time; and as one `nsdn net attach` process per
 * namespace) and with the reference CNI plugins (bridge, ptp) exec'd per namespace in the same
 * run. Reports per-attachment cost and how many times faster nsdn is than the reference.
 *
 * Usage: node dist/bench/drivers.js [--n 250] [--variants ID,...] [--json]
 * (also `node dist/bench/main.js drivers ...`). Outside a sandbox it re-runs itself in one
 * (src/sandbox.ts). Progress goes to stderr; the table (or with --json a JSON array) to stdout.
 * @module
 */
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { errorMessage } from '../src/errors.js'
import { MS, mount } from '../src/ffi/libc.js'
import { linkDel } from '../src/netlink/link.js'
import { Rtnl } from '../src/netlink/rtnl.js'
import { NetNs } from '../src/netns/netns.js'
import { ovsStart, ovsStop } from '../src/ovs/daemon.js'
import { inSandbox, runSandboxed } from '../src/sandbox.js'
import {
  type DriverSample,
  formatDriversJson,
  formatDriversTable,
  withRatios,
} from './drivers-report.js'
import {
  type Attacher,
  CNI_PATH,
  CONCURRENCY,
  type Variant,
  allVariants,
  attacherFor,
} from './drivers-variants.js'

const DEFAULT_N = 250
const USAGE =
  'usage: node dist/bench/main.js drivers [--n N] [--variants ID[,ID...]] [--json]\n' +
  `variants: ${allVariants()
    .map((v) => v.id)
    .join(', ')}`

export interface DriversOptions {
  n: number
  variants: Variant[]
  json: boolean
}

export function parseDriversOptions(argv: readonly string[]): DriversOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      n: { type: 'string' },
      variants: { type: 'string' },
      json: { type: 'boolean' },
    },
  })
  const n = values.n === undefined ? DEFAULT_N : Number(values.n)
  if (!Number.isInteger(n) || n < 2 || n > 4000) throw new Error('--n: 2..4000 namespaces')
  const all = allVariants()
  let variants = all
  if (values.variants !== undefined) {
    const ids = values.variants
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
    if (ids.length === 0) throw new Error('--variants: empty list')
    for (const id of ids)
      if (!all.some((v) => v.id === id)) throw new Error(`--variants: unknown variant "${id}"`)
    variants = all.filter((v) => ids.includes(v.id))
  }
  return { n, variants, json: values.json === true }
}

const nsName = (i: number): string => `bd${i}`

/** Run fn for every item, at most k at once; never rejects (fn's errors are its own). */
async function pool<T>(items: readonly T[], k: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!)
  }
  await Promise.all(Array.from({ length: Math.min(k, items.length) }, worker))
}

interface Phase {
  seconds: number
  failed: number
  firstError: string | undefined
}

async function timed(
  names: readonly string[],
  k: number,
  fn: (ns: string) => Promise<void>,
): Promise<Phase> {
  let failed = 0
  let firstError: string | undefined
  const t = performance.now()
  await pool(names, k, async (ns) => {
    try {
      await fn(ns)
    } catch (e) {
      failed++
      firstError ??= `${ns}: ${errorMessage(e)}`
    }
  })
  return { seconds: (performance.now() - t) / 1000, failed, firstError }
}

/** One ping from the first namespace to addr, a few tries (an OVS port may need a moment). */
function pingFrom(ns: string, addr: string, tries: number): boolean {
  const argv = ['netns', 'exec', ns, 'ping', '-n', '-q', '-c', '1', '-W', '2', addr]
  for (let i = 0; i < tries; i++)
    if (spawnSync('ip', argv, { stdio: 'ignore' }).status === 0) return true
  return false
}

/** Veths in the sandbox's root namespace, read with iproute2. */
function rootVeths(): string[] {
  const r = spawnSync('ip', ['-j', 'link', 'show', 'type', 'veth'], { encoding: 'utf8' })
  const out = r.stdout?.trim() ?? ''
  return out ? (JSON.parse(out) as { ifname: string }[]).map((l) => l.ifname) : []
}

/** host-local lease files of a network (not its lock and round-robin files). */
function leases(dataDir: string, network: string): string[] {
  try {
    return fs
      .readdirSync(path.join(dataDir, network))
      .filter((f) => f !== 'lock' && !f.startsWith('last_reserved_ip'))
  } catch {
    return []
  }
}

function ovsBridges(db: string): string[] {
  const r = spawnSync('ovs-vsctl', [`--db=${db}`, '--timeout=5', 'list-br'], { encoding: 'utf8' })
  return (r.stdout ?? '').split('\n').filter(Boolean)
}

/** Remove whatever a variant may have left (untimed): bridges, veths, leases. */
async function cleanUp(v: Variant, dataDir: string, ovsDb: string | undefined): Promise<void> {
  const root = Rtnl.for()
  const gone = (e: unknown): void => {
    if (!errorMessage(e).match(/not found|no such|cannot find/i))
      process.stderr.write(`drivers: clean-up of ${v.id}: ${errorMessage(e)}\n`)
  }
  for (const veth of rootVeths()) await linkDel(root, veth).catch(gone)
  if (v.bridge !== undefined) {
    if (v.ovs && ovsDb)
      spawnSync('ovs-vsctl', [`--db=${ovsDb}`, '--timeout=5', '--if-exists', 'del-br', v.bridge])
    else await linkDel(root, v.bridge).catch(gone)
  }
  fs.rmSync(dataDir, { recursive: true, force: true })
}

/** Address (without prefix) of the first IP in a result. */
const firstAddr = (r: { ips?: { address: string }[] } | undefined): string | undefined =>
  r?.ips?.[0]?.address.split('/')[0]

/** A variant's sample before it runs: not verified, no times. */
function blank(v: Variant, n: number): DriverSample {
  return {
    driver: v.driver,
    variant: v.variant,
    ...(v.pair !== undefined ? { pair: v.pair } : {}),
    reference: v.reference,
    n,
    attach_s: null,
    detach_s: null,
    verified: false,
  }
}

/** Attach all, check, detach all, check: one sample. */
async function runVariant(
  v: Variant,
  names: readonly string[],
  ovsDb: string | undefined,
): Promise<DriverSample> {
  const n = names.length
  const dataDir = fs.mkdtempSync('/run/nsdn-bench-ipam-')
  const sample = blank(v, n)
  const problems: string[] = []
  // Every variant starts without cached netlink sockets, and a cached socket's NetNs is not
  // reused: Rtnl.for closes the NetNs it is given when it has one for that namespace already,
  // and a driver may still need it (see the report on src/netlink/rtnl.ts).
  Rtnl.closeAll()
  try {
    const a: Attacher = attacherFor(v, dataDir)
    const network = v.conf(dataDir).name
    let last: string | undefined
    const lastNs = names[n - 1]!
    const att = await timed(names, v.concurrency, async (ns) => {
      const r = await a.attach(ns)
      if (ns === lastNs) last = firstAddr(r)
    })
    sample.attach_s = att.seconds
    if (att.failed) problems.push(`attach failed ${att.failed}×, first ${att.firstError}`)
    if (!last) problems.push('no address for the last namespace')
    else if (!pingFrom(names[0]!, last, v.ovs ? 5 : 3))
      problems.push(`ping ${names[0]} -> ${last} failed`)
    const leased = leases(dataDir, network).length
    if (leased !== n - att.failed) problems.push(`${leased} leases after attach`)
    const det = await timed(names, v.concurrency, (ns) => a.detach(ns))
    sample.detach_s = det.seconds
    if (det.failed) problems.push(`detach failed ${det.failed}×, first ${det.firstError}`)
    const veths = rootVeths()
    if (veths.length) problems.push(`${veths.length} veths left`)
    const left = leases(dataDir, network)
    if (left.length) problems.push(`${left.length} leases left`)
    const lost = names.filter((ns) => !NetNs.exists(ns))
    if (lost.length) problems.push(`${lost.length} namespaces gone`)
    if (v.ovs && ovsDb) {
      const brs = ovsBridges(ovsDb)
      if (brs.length) problems.push(`OVS bridges left: ${brs.join(', ')}`)
    }
  } catch (e) {
    problems.push(errorMessage(e))
  } finally {
    await cleanUp(v, dataDir, ovsDb).catch((e: unknown) => problems.push(errorMessage(e)))
  }
  sample.verified = problems.length === 0
  if (problems.length) sample.error = problems.join('; ').slice(0, 400)
  return sample
}

/** Why a variant cannot run here, or undefined. */
function missing(v: Variant): string | undefined {
  if (v.reference && !fs.existsSync(path.join(CNI_PATH, v.driver)))
    return `no ${path.join(CNI_PATH, v.driver)} (apt-get install containernetworking-plugins)`
  return undefined
}

/**
 * Go programs such as the CNI plugins find their own namespaces under /proc/PID/task/TID with
 * the PIDs of their PID namespace: the sandbox's /proc must be one of that namespace.
 */
function ownProc(): void {
  if (fs.readlinkSync('/proc/self') === String(process.pid)) return
  mount('proc', '/proc', 'proc', MS.NOSUID | MS.NODEV | MS.NOEXEC)
}

function header(o: DriversOptions): string {
  const dpkg = spawnSync('dpkg-query', ['-W', '-f', '${Version}', 'containernetworking-plugins'], {
    encoding: 'utf8',
  })
  const plugins = dpkg.status === 0 ? ` ${dpkg.stdout}` : ''
  return (
    `drivers benchmark ${new Date().toISOString()}: kernel ${os.release()}, ` +
    `${os.cpus().length} CPUs, load ${os.loadavg()[0]!.toFixed(2)}; N = ${o.n}; ` +
    `reference: containernetworking-plugins${plugins} (${CNI_PATH}); ` +
    `nsdn x${CONCURRENCY}: in-process, ${CONCURRENCY} attachments in flight`
  )
}

async function runAll(o: DriversOptions): Promise<DriverSample[]> {
  ownProc()
  const names = Array.from({ length: o.n }, (_, i) => nsName(i + 1))
  for (const ns of names) NetNs.create(ns).close()
  const samples: DriverSample[] = []
  let ovsDb: string | undefined
  try {
    for (const v of o.variants) {
      const skip = missing(v)
      if (skip) {
        process.stderr.write(`drivers: skipping ${v.id}: ${skip}\n`)
        continue
      }
      if (v.ovs && ovsDb === undefined) {
        try {
          ovsDb = (await ovsStart()).db
        } catch (e) {
          samples.push({ ...blank(v, o.n), error: `cannot start Open vSwitch: ${errorMessage(e)}` })
          continue
        }
      }
      const s = await runVariant(v, names, ovsDb)
      samples.push(s)
      const t = (x: number | null): string => (x === null ? '–' : x.toFixed(3))
      process.stderr.write(
        `${v.id}: attach ${t(s.attach_s)} s, detach ${t(s.detach_s)} s, ` +
          `${s.verified ? 'verified' : `NOT verified (${s.error ?? '?'})`}\n`,
      )
    }
  } finally {
    if (ovsDb !== undefined) await ovsStop().catch(() => undefined)
    Rtnl.closeAll()
    for (const ns of names) if (NetNs.exists(ns)) NetNs.delete(ns)
  }
  return samples
}

/** Entry point for main.ts and for this file run directly; resolves to the exit status. */
export async function driversMain(argv: readonly string[]): Promise<number> {
  let o: DriversOptions
  try {
    o = parseDriversOptions(argv)
  } catch (e) {
    process.stderr.write(`${errorMessage(e)}\n${USAGE}\n`)
    return 64
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write('bench drivers: needs root (it runs in a throw-away sandbox)\n')
    return 77
  }
  if (!inSandbox()) return runSandboxed([process.execPath, __filename, ...argv])
  const head = header(o)
  const rows = withRatios(await runAll(o))
  if (o.json) process.stdout.write(formatDriversJson(rows) + '\n')
  else process.stdout.write(`${head}\n\n${formatDriversTable(rows)}\n`)
  return rows.every((r) => r.verified) ? 0 : 1
}

if (require.main === module)
  void driversMain(process.argv.slice(2)).then((code) => (process.exitCode = code))
