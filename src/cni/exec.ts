/**
 * nsdn as a CNI runtime, what libcni and cnitool do: find plugins in CNI_PATH, run a conflist
 * (ADD in order, each plugin getting the previous one's Result as prevResult; DEL in reverse
 * with the cached Result; CHECK with it; STATUS; GC with cni.dev/valid-attachments), map
 * capability args to runtimeConfig, and keep each attachment's Result on disk in libcni's
 * cache layout (`<cacheDir>/results/<network>-<containerId>-<ifname>`, kind cniCacheV1), so
 * either side can pick up what the other started.
 * @module
 */
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import type { CniResult } from '../drivers/api.js'
import { ConfigError, NsdnError, errorMessage } from '../errors.js'
import { logger } from '../log.js'
import {
  CniPluginError,
  type CniCommand,
  compareVersions,
  isSupported,
  readResult,
  writeResult,
} from './spec.js'

const log = logger('cni.exec')

type Json = Record<string, unknown>

/** The directories of CNI_PATH (default /opt/cni/bin, as libcni's callers use). */
export function cniPath(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env.CNI_PATH ?? '/opt/cni/bin').split(':').filter(Boolean)
}

/** The executable of plugin `type` in the first directory of `dirs` that has it. */
export function findPlugin(type: string, dirs: readonly string[]): string | undefined {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(type)) return undefined
  for (const d of dirs) {
    const p = path.join(d, type)
    try {
      fs.accessSync(p, fs.constants.X_OK)
      return p
    } catch {
      // next directory
    }
  }
  return undefined
}

export interface PluginRun {
  command: CniCommand
  containerId?: string
  netns?: string
  ifname?: string
  /** CNI_ARGS, "K=V;K=V". */
  args?: string
  path: readonly string[]
}

/**
 * Run one plugin executable with the CNI environment and `stdin`; resolves with its stdout
 * (the Result, or nothing), rejects with the plugin's error JSON as a CniPluginError.
 * Equivalent: `CNI_COMMAND=... plugin < conf.json`.
 */
export function execPlugin(exe: string, run: PluginRun, stdin: Buffer | string): Promise<string> {
  // The runtime's environment plus the CNI variables, as libcni passes them.
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CNI_COMMAND: run.command,
    CNI_CONTAINERID: run.containerId ?? '',
    CNI_NETNS: run.netns ?? '',
    CNI_IFNAME: run.ifname ?? '',
    CNI_ARGS: run.args ?? '',
    CNI_PATH: run.path.join(':'),
  }
  const name = path.basename(exe)
  return new Promise((resolve, reject) => {
    const child = spawn(exe, [], { env, stdio: ['pipe', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (b: Buffer) => out.push(b))
    child.stderr.on('data', (b: Buffer) => {
      err.push(b)
      process.stderr.write(b) // a plugin's logs and explain lines are the user's to see
    })
    child.on('error', (e) =>
      reject(new NsdnError('E_EXEC', `cannot run CNI plugin ${exe}: ${e.message}`)),
    )
    child.on('close', (code) => {
      const stdout = Buffer.concat(out).toString('utf8')
      if (code === 0) return resolve(stdout)
      let parsed: { code?: unknown; msg?: unknown; details?: unknown } | undefined
      try {
        parsed = JSON.parse(stdout) as typeof parsed
      } catch {
        parsed = undefined
      }
      if (parsed && typeof parsed.code === 'number' && typeof parsed.msg === 'string')
        return reject(
          new CniPluginError(name, {
            code: parsed.code,
            msg: parsed.msg,
            ...(typeof parsed.details === 'string' ? { details: parsed.details } : {}),
          }),
        )
      const stderr = Buffer.concat(err).toString('utf8').trim()
      reject(
        new NsdnError('E_EXEC', `CNI plugin ${name} ${run.command} exited ${code}`, {
          details: stderr || stdout || 'no output',
        }),
      )
    })
    child.stdin.on('error', () => undefined) // a plugin may exit without reading stdin
    child.stdin.end(stdin)
  })
}

/** A network configuration list; a single config becomes a list of one plugin. */
export interface ConfList {
  cniVersion: string
  name: string
  plugins: Json[]
  disableCheck: boolean
  disableGC: boolean
  /** The file's bytes, kept in the cache as libcni does. */
  bytes: Buffer
}

/** Read a .conflist or a single .conf (JSON) from a file. */
export function loadConfList(file: string): ConfList {
  let bytes: Buffer
  try {
    bytes = fs.readFileSync(file)
  } catch (err) {
    throw new ConfigError(`cannot read ${file}: ${errorMessage(err)}`, 'CONFLIST')
  }
  return parseConfList(bytes, file)
}

export function parseConfList(bytes: Buffer, where = 'conflist'): ConfList {
  let o: Json
  try {
    o = JSON.parse(bytes.toString('utf8')) as Json
  } catch (err) {
    throw new ConfigError(`not JSON: ${errorMessage(err)}`, where)
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o))
    throw new ConfigError('must be a JSON object', where)
  const single = o.plugins === undefined
  const plugins = single ? [o] : o.plugins
  if (!Array.isArray(plugins) || !plugins.length)
    throw new ConfigError('plugins must be a non-empty list', `${where}: plugins`)
  plugins.forEach((p: unknown, i) => {
    if (typeof p !== 'object' || p === null || typeof (p as Json).type !== 'string')
      throw new ConfigError('each plugin needs a "type"', `${where}: plugins[${i}].type`)
  })
  const name = o.name
  if (typeof name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name))
    throw new ConfigError(`invalid network name ${JSON.stringify(name ?? null)}`, `${where}: name`)
  const cniVersion = typeof o.cniVersion === 'string' ? o.cniVersion : ''
  if (!isSupported(cniVersion))
    throw new NsdnError('E_CNI_VERSION', `${where}: cniVersion "${cniVersion}" is not supported`)
  return {
    cniVersion,
    name,
    plugins: plugins as Json[],
    disableCheck: o.disableCheck === true,
    disableGC: o.disableGC === true,
    bytes,
  }
}

/** What the runtime knows of one attachment (libcni's RuntimeConf). */
export interface RuntimeConf {
  containerId: string
  netns: string
  ifname: string
  /** CNI_ARGS pairs. */
  args: [string, string][]
  /** Values for the plugins' capabilities (portMappings, ips, mac, bandwidth, ...). */
  capabilityArgs: Json
  /** CNI_PATH. */
  path: string[]
  /** Where results are cached: libcni's default /var/lib/cni. */
  cacheDir: string
}

export const DEFAULT_CACHE_DIR = '/var/lib/cni'

/** libcni's cache entry. */
interface CacheEntry {
  kind: 'cniCacheV1'
  containerId: string
  config: string
  ifName: string
  networkName: string
  netns: string
  cniArgs: [string, string][]
  capabilityArgs: Json
  result: Json
}

export function cacheFile(list: { name: string }, rt: RuntimeConf): string {
  return path.join(rt.cacheDir, 'results', `${list.name}-${rt.containerId}-${rt.ifname}`)
}

function readCache(file: string): CacheEntry | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as CacheEntry
  } catch {
    return undefined
  }
}

function writeCache(list: ConfList, rt: RuntimeConf, result: Json): void {
  const entry: CacheEntry = {
    kind: 'cniCacheV1',
    containerId: rt.containerId,
    config: list.bytes.toString('base64'),
    ifName: rt.ifname,
    networkName: list.name,
    netns: rt.netns,
    cniArgs: rt.args,
    capabilityArgs: rt.capabilityArgs,
    result,
  }
  const file = cacheFile(list, rt)
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true })
    fs.writeFileSync(`${file}.tmp`, JSON.stringify(entry))
    fs.renameSync(`${file}.tmp`, file)
  } catch (err) {
    throw new NsdnError('E_IO', `cannot write the result cache ${file}: ${errorMessage(err)}`)
  }
}

/**
 * One plugin's config as the runtime sends it: the list's name and cniVersion injected,
 * runtimeConfig from the capabilities the plugin declares and the runtime has values for,
 * prevResult in the list's version.
 */
export function pluginConf(
  list: ConfList,
  plugin: Json,
  rt: RuntimeConf,
  prev: CniResult | undefined,
): Json {
  const conf: Json = { ...plugin, name: list.name, cniVersion: list.cniVersion }
  const caps = plugin.capabilities
  if (caps && typeof caps === 'object') {
    const rc: Json = {}
    for (const [k, on] of Object.entries(caps as Json))
      if (on === true && rt.capabilityArgs[k] !== undefined) rc[k] = rt.capabilityArgs[k]
    if (Object.keys(rc).length) conf.runtimeConfig = rc
  }
  delete conf.capabilities
  if (prev) conf.prevResult = writeResult(prev, list.cniVersion)
  return conf
}

function runOf(command: CniCommand, rt: RuntimeConf): PluginRun {
  return {
    command,
    containerId: rt.containerId,
    netns: rt.netns,
    ifname: rt.ifname,
    args: rt.args.map(([k, v]) => `${k}=${v}`).join(';'),
    path: rt.path,
  }
}

function pluginExe(plugin: Json, rt: RuntimeConf): string {
  const type = String(plugin.type)
  const exe = findPlugin(type, rt.path)
  if (!exe)
    throw new NsdnError('E_NOT_FOUND', `CNI plugin "${type}" not found in ${rt.path.join(':')}`, {
      hint: 'set CNI_PATH (or --cni-path) to the directory of the plugin binaries',
    })
  return exe
}

async function invoke(
  command: CniCommand,
  list: ConfList,
  plugin: Json,
  rt: RuntimeConf,
  prev: CniResult | undefined,
): Promise<string> {
  const conf = pluginConf(list, plugin, rt, prev)
  log.info({ command, type: plugin.type, containerId: rt.containerId }, 'plugin')
  return execPlugin(pluginExe(plugin, rt), runOf(command, rt), JSON.stringify(conf))
}

/**
 * ADD the list. On failure the plugins that may have done something are DELeted (as a
 * runtime does after a failed ADD), so nothing is left behind; the first error is thrown.
 */
export async function addNetworkList(list: ConfList, rt: RuntimeConf): Promise<Json> {
  let prev: CniResult | undefined
  let reached = 0
  try {
    for (const p of list.plugins) {
      reached++
      const out = await invoke('ADD', list, p, rt, prev)
      prev = readResult(JSON.parse(out) as unknown)
    }
  } catch (err) {
    // Only the plugins ADD reached may have done something.
    const ran = { ...list, plugins: list.plugins.slice(0, reached) }
    await delNetworkList(ran, rt).catch((e: unknown) =>
      log.warn({ err: errorMessage(e) }, 'DEL after a failed ADD failed'),
    )
    throw err
  }
  const result = writeResult(prev ?? {}, list.cniVersion)
  writeCache(list, rt, result)
  return result
}

/** The cached Result of an attachment, when ADD recorded one. */
export function cachedResult(list: ConfList, rt: RuntimeConf): CniResult | undefined {
  const e = readCache(cacheFile(list, rt))
  return e?.result ? readResult(e.result) : undefined
}

/**
 * DEL the list in reverse order, each plugin given the cached Result; then drop the cache.
 * A plugin's failure does not stop the others' DEL (each removes what it can); the first
 * error is thrown at the end and the cache kept, so the DEL can be retried.
 */
export async function delNetworkList(list: ConfList, rt: RuntimeConf): Promise<void> {
  const cached = cachedResult(list, rt)
  // prevResult on DEL came with 0.4.0.
  const prev = compareVersions(list.cniVersion, '0.4.0') >= 0 ? cached : undefined
  const errors: unknown[] = []
  for (const p of [...list.plugins].reverse())
    await invoke('DEL', list, p, rt, prev).catch((err: unknown) => errors.push(err))
  if (errors.length) throw errors[0]
  fs.rmSync(cacheFile(list, rt), { force: true })
}

/** CHECK the list against the cached Result. */
export async function checkNetworkList(list: ConfList, rt: RuntimeConf): Promise<void> {
  if (compareVersions(list.cniVersion, '0.4.0') < 0)
    throw new NsdnError(
      'E_CNI_VERSION',
      `CHECK needs cniVersion 0.4.0 or later, not ${list.cniVersion}`,
    )
  if (list.disableCheck) return
  const cached = cachedResult(list, rt)
  if (!cached)
    throw new NsdnError(
      'E_UNKNOWN_CONTAINER',
      `no cached result for ${rt.containerId}/${rt.ifname} on network "${list.name}"`,
      { hint: `run ADD first; results are cached in ${path.dirname(cacheFile(list, rt))}` },
    )
  for (const p of list.plugins) await invoke('CHECK', list, p, rt, cached)
}

/** STATUS of each plugin (1.1.0 and later; older lists have no STATUS and are ready). */
export async function statusNetworkList(list: ConfList, rt: NetworkRuntime): Promise<void> {
  if (compareVersions(list.cniVersion, '1.1.0') < 0) return
  for (const p of list.plugins) await invoke('STATUS', list, p, noAttachment(rt), undefined)
}

/** What STATUS and GC know: no container, no netns, no interface. */
export type NetworkRuntime = Omit<RuntimeConf, 'containerId' | 'netns' | 'ifname'>

const noAttachment = (rt: NetworkRuntime): RuntimeConf => ({
  ...rt,
  containerId: '',
  netns: '',
  ifname: '',
})

/** The attachments of a network the cache knows: "containerId/ifname". */
export function cachedAttachments(list: ConfList, cacheDir: string): Map<string, CacheEntry> {
  const dir = path.join(cacheDir, 'results')
  const found = new Map<string, CacheEntry>()
  let names: string[] = []
  try {
    names = fs.readdirSync(dir)
  } catch {
    return found
  }
  for (const n of names) {
    if (!n.startsWith(`${list.name}-`) || n.endsWith('.tmp')) continue
    const e = readCache(path.join(dir, n))
    if (e?.networkName === list.name) found.set(`${e.containerId}/${e.ifName}`, e)
  }
  return found
}

/**
 * GC: DEL every cached attachment of the network not in `valid` ("containerId/ifname"), then
 * send GC with cni.dev/valid-attachments to each plugin (1.1.0), which removes what no cache
 * knows (leases, links, port mappings).
 */
export async function gcNetworkList(
  list: ConfList,
  rt: NetworkRuntime,
  valid: ReadonlySet<string>,
): Promise<void> {
  const errors: unknown[] = []
  for (const [key, e] of cachedAttachments(list, rt.cacheDir)) {
    if (valid.has(key)) continue
    const one: RuntimeConf = {
      ...rt,
      containerId: e.containerId,
      ifname: e.ifName,
      netns: e.netns,
      args: e.cniArgs ?? [],
      capabilityArgs: e.capabilityArgs ?? {},
    }
    await delNetworkList(list, one).catch((err: unknown) => errors.push(err))
  }
  if (compareVersions(list.cniVersion, '1.1.0') >= 0 && !list.disableGC) {
    const attachments = [...valid].map((k) => {
      const i = k.lastIndexOf('/')
      return { containerID: k.slice(0, i), ifname: k.slice(i + 1) }
    })
    const none = noAttachment(rt)
    for (const p of list.plugins) {
      const conf = {
        ...pluginConf(list, p, none, undefined),
        'cni.dev/valid-attachments': attachments,
      }
      await execPlugin(pluginExe(p, none), runOf('GC', none), JSON.stringify(conf)).catch(
        (err: unknown) => errors.push(err),
      )
    }
  }
  if (errors[0]) throw errors[0]
}
