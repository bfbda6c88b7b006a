/**
 * What the drivers benchmark compares: each variant is a network config plus a way to attach
 * and detach one named namespace with it. nsdn's drivers run in-process (src/drivers/attach.ts)
 * or as one `nsdn net attach|detach` process per namespace; the reference CNI plugins run as a
 * runtime runs them: one exec per namespace, CNI_* in the environment, the config on stdin.
 * @module
 */
import { spawn } from 'node:child_process'
import path from 'node:path'
import type { CniResult } from '../src/drivers/api.js'
import { attach, detach } from '../src/drivers/attach.js'

/** Debian's containernetworking-plugins. */
export const CNI_PATH = '/usr/lib/cni'
/** In-process attachments in flight at once in the concurrent variants. */
export const CONCURRENCY = 16
/** Any one plugin or CLI process longer than this counts as failed. */
const EXEC_LIMIT_MS = 30_000

const CLI = path.resolve(__dirname, '..', 'src', 'cli', 'main.js')

export interface Variant {
  /** For --variants: bridge, bridge-x16, bridge-cli, cni-bridge, ... */
  id: string
  /** The nsdn driver, or the CNI type of a reference plugin. */
  driver: string
  variant: string
  pair?: string
  reference: boolean
  /** Attachments in flight at once (1: one after the other, as a runtime starting pods). */
  concurrency: number
  /** The Linux or OVS bridge the variant creates, removed after it. */
  bridge?: string
  /** Runs on the private Open vSwitch the bench starts. */
  ovs: boolean
  /** The network config; each run gets a fresh host-local dataDir. */
  conf(dataDir: string): { name: string } & Record<string, unknown>
}

/** What runs one variant's attachments. */
export interface Attacher {
  attach(netns: string): Promise<CniResult>
  detach(netns: string): Promise<void>
}

const ipam = (subnet: string, dataDir: string): Record<string, unknown> => ({
  type: 'host-local',
  subnet,
  dataDir,
})

function bridgeConf(name: string, type: string, bridge: string, subnet: string): Variant['conf'] {
  return (dataDir) => ({
    cniVersion: '1.0.0',
    name,
    type,
    bridge,
    isGateway: true,
    ipam: ipam(subnet, dataDir),
  })
}

function routedConf(name: string, type: string, subnet: string): Variant['conf'] {
  return (dataDir) => ({
    cniVersion: '1.0.0',
    name,
    type,
    ipam: ipam(subnet, dataDir),
  })
}

/** The nsdn variants of one driver: in-process one by one, in-process concurrent, the CLI. */
function nsdnVariants(
  driver: string,
  pair: string,
  conf: Variant['conf'],
  bridge?: string,
): Variant[] {
  const base = {
    driver,
    pair,
    reference: false,
    ovs: false,
    conf,
    ...(bridge !== undefined ? { bridge } : {}),
  }
  return [
    { ...base, id: driver, variant: 'nsdn', concurrency: 1 },
    {
      ...base,
      id: `${driver}-x${CONCURRENCY}`,
      variant: `nsdn x${CONCURRENCY}`,
      concurrency: CONCURRENCY,
    },
    { ...base, id: `${driver}-cli`, variant: 'nsdn-cli', concurrency: 1 },
  ]
}

/** The reference plugin of a pair, exec'd one namespace after the other. */
function reference(type: string, pair: string, conf: Variant['conf'], bridge?: string): Variant {
  return {
    id: `cni-${type}`,
    driver: type,
    variant: 'cni',
    pair,
    reference: true,
    concurrency: 1,
    ovs: false,
    conf,
    ...(bridge !== undefined ? { bridge } : {}),
  }
}

/** ovs and vlan (backend ovs, tag 100): no reference plugin on Debian (ovs-cni is not packaged). */
function ovsVariants(): Variant[] {
  const ovsConf: Variant['conf'] = (dataDir) => ({
    cniVersion: '1.0.0',
    name: 'bench-ovs',
    type: 'ovs',
    bridge: 'nsdnovs0',
    ipam: ipam('10.92.0.0/16', dataDir),
  })
  const vlanConf: Variant['conf'] = (dataDir) => ({
    cniVersion: '1.0.0',
    name: 'bench-vlan',
    type: 'vlan',
    backend: 'ovs',
    bridge: 'nsdnvl0',
    vlanId: 100,
    ipam: ipam('10.93.0.0/16', dataDir),
  })
  const ovs = { driver: 'ovs', reference: false, ovs: true }
  return [
    { ...ovs, id: 'ovs', variant: 'nsdn', concurrency: 1, bridge: 'nsdnovs0', conf: ovsConf },
    {
      ...ovs,
      id: `ovs-x${CONCURRENCY}`,
      variant: `nsdn x${CONCURRENCY}`,
      concurrency: CONCURRENCY,
      bridge: 'nsdnovs0',
      conf: ovsConf,
    },
    {
      ...ovs,
      id: 'vlan',
      driver: 'vlan',
      variant: 'nsdn',
      concurrency: 1,
      bridge: 'nsdnvl0',
      conf: vlanConf,
    },
  ]
}

/**
 * Every variant, in the order they run: each reference first, then nsdn's variants of its pair.
 * Same settings within a pair; the reference gets its own bridge, subnet and dataDir.
 */
export function allVariants(): Variant[] {
  return [
    reference(
      'bridge',
      'bridge',
      bridgeConf('bench-cni-bridge', 'bridge', 'cnibr0', '10.89.0.0/16'),
      'cnibr0',
    ),
    ...nsdnVariants(
      'bridge',
      'bridge',
      bridgeConf('bench-bridge', 'bridge', 'nsdnbr0', '10.88.0.0/16'),
      'nsdnbr0',
    ),
    reference('ptp', 'routed/ptp', routedConf('bench-cni-ptp', 'ptp', '10.91.0.0/16')),
    ...nsdnVariants('routed', 'routed/ptp', routedConf('bench-routed', 'routed', '10.90.0.0/16')),
    ...ovsVariants(),
  ]
}

interface Exit {
  code: number | null
  stdout: string
  stderr: string
}

/** Run a program with stdin text; never rejects. */
function run(argv: string[], env: NodeJS.ProcessEnv, input: string): Promise<Exit> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: EXEC_LIMIT_MS,
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    child.on('error', (e) => resolve({ code: null, stdout, stderr: stderr + e.message }))
    child.on('close', (code) => resolve({ code, stdout, stderr }))
    child.stdin.on('error', () => undefined)
    child.stdin.end(input)
  })
}

/** The one line that says why a process failed. */
function why(what: string, e: Exit): Error {
  let msg = e.stderr.trim().split('\n').filter(Boolean).slice(-1)[0] ?? ''
  try {
    // CNI plugins report errors as JSON on stdout: {"code": N, "msg": "..."}
    const j = JSON.parse(e.stdout) as { msg?: string; details?: string }
    if (j.msg) msg = [j.msg, j.details].filter(Boolean).join(': ')
  } catch {
    // not JSON
  }
  const how = e.code === null ? 'killed' : `exit ${e.code}`
  return new Error(`${what}: ${how}${msg ? `: ${msg}` : ''}`)
}

function parseResult(what: string, e: Exit): CniResult {
  if (e.code !== 0) throw why(what, e)
  try {
    return JSON.parse(e.stdout) as CniResult
  } catch {
    throw new Error(`${what}: no JSON result on stdout`)
  }
}

/** The reference plugin, exec'd per namespace exactly as a runtime does. */
function cniAttacher(v: Variant, conf: Record<string, unknown>): Attacher {
  const file = path.join(CNI_PATH, v.driver)
  const stdin = JSON.stringify(conf)
  const env = (cmd: 'ADD' | 'DEL', netns: string): NodeJS.ProcessEnv => ({
    ...process.env,
    CNI_COMMAND: cmd,
    CNI_CONTAINERID: netns,
    CNI_NETNS: `/run/netns/${netns}`,
    CNI_IFNAME: 'eth0',
    CNI_PATH,
  })
  return {
    attach: async (ns) => parseResult(`${v.driver} ADD`, await run([file], env('ADD', ns), stdin)),
    async detach(ns) {
      const e = await run([file], env('DEL', ns), stdin)
      if (e.code !== 0) throw why(`${v.driver} DEL`, e)
    },
  }
}

/** nsdn's CLI, one process per namespace, as a runtime would exec a plugin. */
function cliAttacher(v: Variant, conf: Record<string, unknown>): Attacher {
  const args = (verb: string, ns: string): string[] => [
    process.execPath,
    CLI,
    '--json',
    'net',
    verb,
    ns,
    '--driver',
    v.driver,
    '--conf',
    JSON.stringify(conf),
  ]
  return {
    async attach(ns) {
      return parseResult('nsdn net attach', await run(args('attach', ns), process.env, ''))
    },
    async detach(ns) {
      const e = await run(args('detach', ns), process.env, '')
      if (e.code !== 0) throw why('nsdn net detach', e)
    },
  }
}

/** nsdn's driver called in this process. */
function inProcessAttacher(v: Variant, conf: Record<string, unknown>): Attacher {
  return {
    attach: (netns) => attach({ driver: v.driver, conf, netns }),
    detach: (netns) => detach({ driver: v.driver, conf, netns }),
  }
}

export function attacherFor(v: Variant, dataDir: string): Attacher {
  const conf = v.conf(dataDir)
  if (v.reference) return cniAttacher(v, conf)
  if (v.variant === 'nsdn-cli') return cliAttacher(v, conf)
  return inProcessAttacher(v, conf)
}
