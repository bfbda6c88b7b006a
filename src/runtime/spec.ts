/**
 * The container spec (JSON or YAML; also a lab node's shape): what the runtime builds. Parsing
 * validates every field and says which one is wrong (`limits.memory`), and why, before anything
 * is created.
 * @module
 */
import fs from 'node:fs'
import { ConfigError } from '../errors.js'
import type { Limits } from './cgroups.js'

export const NAMESPACES = ['mnt', 'uts', 'ipc', 'pid', 'net', 'cgroup', 'user'] as const
export type NsName = (typeof NAMESPACES)[number]

/** `container` ids map to `host` ids, `size` of them (a line of /proc/PID/uid_map). */
export interface IdMap {
  container: number
  host: number
  size: number
}

export type MountSpec =
  | { type: 'bind'; source: string; target: string; readonly: boolean }
  | { type: 'tmpfs'; target: string; options?: string }

/** A network of the container: an nsdn driver in-process, or a CNI conflist run by nsdn's CNI side. */
export type NetworkSpec = {
  ifname: string
  /** MAC address of the interface in the container (LXC's hwaddr). */
  mac?: string
} & (
  | {
      /** An nsdn driver (bridge, ovs, vlan, routed, or one from NSDN_DRIVER_PATH). */
      driver: string
      conf: Record<string, unknown>
    }
  | {
      /**
       * A CNI network config list (or a single config), kept in the spec as read at create:
       * DEL on stop and rm gets the same config as ADD, even if the file changed or is gone.
       */
      cni: Record<string, unknown>
      /** The file it was read from, for messages. */
      conflist?: string
    }
)

export interface ContainerSpec {
  name: string
  hostname: string
  /** An imported image under an overlay, or the host's root read-only (application container). */
  rootfs: { image: string } | { hostRoot: true }
  namespaces: NsName[]
  uidMap: IdMap[]
  gidMap: IdMap[]
  mounts: MountSpec[]
  /** KEY=VALUE */
  env: string[]
  cwd: string
  command: string[]
  /** Capabilities kept (names without CAP_); every other one is dropped. */
  capabilities: string[]
  limits: Limits
  networks: NetworkSpec[]
}

/** Docker's default set, without MKNOD (nsdn sets no device cgroup rules). */
export const DEFAULT_CAPS = [
  'CHOWN',
  'DAC_OVERRIDE',
  'FSETID',
  'FOWNER',
  'SETGID',
  'SETUID',
  'SETPCAP',
  'NET_BIND_SERVICE',
  'NET_RAW',
  'SYS_CHROOT',
  'KILL',
  'AUDIT_WRITE',
  'SETFCAP',
]

/** linux/capability.h numbering. */
export const CAPS: Record<string, number> = Object.fromEntries(
  [
    'CHOWN',
    'DAC_OVERRIDE',
    'DAC_READ_SEARCH',
    'FOWNER',
    'FSETID',
    'KILL',
    'SETGID',
    'SETUID',
    'SETPCAP',
    'LINUX_IMMUTABLE',
    'NET_BIND_SERVICE',
    'NET_BROADCAST',
    'NET_ADMIN',
    'NET_RAW',
    'IPC_LOCK',
    'IPC_OWNER',
    'SYS_MODULE',
    'SYS_RAWIO',
    'SYS_CHROOT',
    'SYS_PTRACE',
    'SYS_PACCT',
    'SYS_ADMIN',
    'SYS_BOOT',
    'SYS_NICE',
    'SYS_RESOURCE',
    'SYS_TIME',
    'SYS_TTY_CONFIG',
    'MKNOD',
    'LEASE',
    'AUDIT_WRITE',
    'AUDIT_CONTROL',
    'SETFCAP',
    'MAC_OVERRIDE',
    'MAC_ADMIN',
    'SYSLOG',
    'WAKE_ALARM',
    'BLOCK_SUSPEND',
    'AUDIT_READ',
    'PERFMON',
    'BPF',
    'CHECKPOINT_RESTORE',
  ].map((n, i) => [n, i]),
)

/** The kept capabilities as the hex mask nsdn-init takes. */
export function capMask(caps: readonly string[]): string {
  let m = 0n
  for (const c of caps) m |= 1n << BigInt(CAPS[c] ?? 0)
  return m.toString(16)
}

const shown = (v: unknown): string => JSON.stringify(v)

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/

export function validContainerName(name: string, where = 'name'): string {
  if (!NAME_RE.test(name))
    throw new ConfigError(`invalid container name ${shown(name)}`, where, {
      hint: 'use 1-63 letters, digits, "-", "_", "."; start with a letter or digit',
    })
  return name
}

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 2 ** 10,
  m: 2 ** 20,
  g: 2 ** 30,
  t: 2 ** 40,
}

/** "64M", "1g", "512k", "1048576" -> bytes (binary units, as docker and LXC read them). */
export function parseSize(v: unknown, where: string): number {
  const hint = 'a size is a whole number with an optional unit: 64M, 512k, 1G (binary units)'
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v <= 0)
      throw new ConfigError(`size ${shown(v)} must be a positive whole number`, where, { hint })
    return v
  }
  const m = typeof v === 'string' ? /^(-?\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(v.trim()) : null
  if (!m) throw new ConfigError(`invalid size ${shown(v)}`, where, { hint })
  let unit = (m[2] ?? '').toLowerCase()
  if (unit.length > 1) unit = unit.replace(/i?b$/, '') // kb, KiB, MB ...
  const mult = SIZE_UNITS[unit]
  if (mult === undefined)
    throw new ConfigError(`unknown unit ${shown(m[2])} in ${shown(v)}`, where, { hint })
  const n = Number(m[1]) * mult
  if (n <= 0) throw new ConfigError(`size ${shown(v)} must be positive`, where, { hint })
  return Math.floor(n)
}

function int(v: unknown, where: string, min: number, max: number): number {
  const n = typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : v
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max)
    throw new ConfigError(`${shown(v)} is not a whole number from ${min} to ${max}`, where)
  return n
}

/** A cpuset list ("0-1,3") whose cpus all exist in `cpus`. */
export function parseCpuset(v: unknown, where: string, cpus?: Set<number>): string {
  const hint = 'a cpu list like "0", "0-1" or "0,2"'
  if (typeof v === 'number') v = String(v)
  if (typeof v !== 'string' || !/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(v))
    throw new ConfigError(`invalid cpu list ${shown(v)}`, where, { hint })
  if (cpus)
    for (const part of v.split(',')) {
      const [a = 0, b = a] = part.split('-').map(Number)
      for (let i = a; i <= b; i++)
        if (!cpus.has(i))
          throw new ConfigError(`cpu ${i} is not on this machine`, where, {
            hint: `this machine has cpus ${[...cpus].join(',')}`,
          })
    }
  return v
}

function parseCpus(v: unknown, where: string): number {
  const n = typeof v === 'string' && /^\d+(\.\d+)?$/.test(v) ? Number(v) : v
  if (typeof n !== 'number' || !(n >= 0.01) || n > 1024)
    throw new ConfigError(`cpus ${shown(v)} must be a number of cpus from 0.01`, where, {
      hint: 'e.g. 0.5 for half a cpu',
    })
  return n
}

function obj(v: unknown, where: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new ConfigError(`must be an object, not ${shown(v)}`, where)
  return v as Record<string, unknown>
}

function str(v: unknown, where: string): string {
  if (typeof v !== 'string' || v === '') throw new ConfigError(`must be a non-empty string`, where)
  return v
}

function strList(v: unknown, where: string): string[] {
  if (!Array.isArray(v)) throw new ConfigError('must be a list of strings', where)
  return v.map((x, i) => str(x, `${where}[${i}]`))
}

function noUnknown(o: Record<string, unknown>, known: readonly string[], where: string): void {
  for (const k of Object.keys(o))
    if (!known.includes(k))
      throw new ConfigError(`unknown field ${shown(k)}`, where, {
        hint: `known fields: ${known.join(', ')}`,
      })
}

function absPath(v: unknown, where: string): string {
  const p = str(v, where)
  if (!p.startsWith('/') || p.split('/').includes('..'))
    throw new ConfigError(`${shown(p)} must be an absolute path without ".."`, where)
  return p
}

/** Validate the limits section; `cpus` is the machine's cpu set (for cpuset checks). */
export function parseLimits(v: unknown, where: string, cpus?: Set<number>): Limits {
  const o = obj(v, where)
  const known = [
    'memory',
    'memorySwap',
    'cpuWeight',
    'cpus',
    'cpusetCpus',
    'cpusetMems',
    'pids',
    'ioWeight',
  ]
  noUnknown(o, known, where)
  const l: Limits = {}
  const w = (k: string): string => `${where}.${k}`
  if (o.memory !== undefined) l.memory = parseSize(o.memory, w('memory'))
  if (o.memorySwap !== undefined) {
    l.memorySwap = parseSize(o.memorySwap, w('memorySwap'))
    if (l.memory === undefined || l.memorySwap < l.memory)
      throw new ConfigError('memorySwap (memory + swap) must be at least memory', w('memorySwap'))
  }
  if (o.cpuWeight !== undefined) l.cpuWeight = int(o.cpuWeight, w('cpuWeight'), 1, 10000)
  if (o.cpus !== undefined) l.cpus = parseCpus(o.cpus, w('cpus'))
  if (o.cpusetCpus !== undefined) l.cpusetCpus = parseCpuset(o.cpusetCpus, w('cpusetCpus'), cpus)
  if (o.cpusetMems !== undefined) l.cpusetMems = parseCpuset(o.cpusetMems, w('cpusetMems'))
  if (o.pids !== undefined) l.pids = int(o.pids, w('pids'), 1, 4194304)
  if (o.ioWeight !== undefined) l.ioWeight = int(o.ioWeight, w('ioWeight'), 1, 10000)
  return l
}

function idMaps(v: unknown, where: string): IdMap[] {
  if (!Array.isArray(v) || v.length === 0) throw new ConfigError('must be a list of maps', where)
  return v.map((m, i) => {
    const o = obj(m, `${where}[${i}]`)
    noUnknown(o, ['container', 'host', 'size'], `${where}[${i}]`)
    return {
      container: int(o.container, `${where}[${i}].container`, 0, 2 ** 32 - 2),
      host: int(o.host, `${where}[${i}].host`, 0, 2 ** 32 - 2),
      size: int(o.size, `${where}[${i}].size`, 1, 2 ** 32 - 1),
    }
  })
}

const DEFAULT_MAP: IdMap[] = [{ container: 0, host: 100000, size: 65536 }]

const SPEC_FIELDS = [
  'name',
  'hostname',
  'image',
  'hostRoot',
  'namespaces',
  'uidMap',
  'gidMap',
  'mounts',
  'env',
  'cwd',
  'command',
  'capabilities',
  'limits',
  'networks',
] as const

/**
 * Validate a spec object (from JSON, YAML or the CLI's flags). `where` prefixes field paths in
 * errors (a file name); `cpus` is the machine's cpu set.
 */
export function parseSpec(raw: unknown, where = 'spec', cpus?: Set<number>): ContainerSpec {
  const o = obj(raw, where)
  noUnknown(o, SPEC_FIELDS, where)
  const w = (k: string): string => `${where}.${k}`
  const name = validContainerName(str(o.name, w('name')), w('name'))
  if ((o.image === undefined) === (o.hostRoot === undefined || o.hostRoot === false))
    throw new ConfigError('give exactly one of "image" and "hostRoot: true"', where, {
      hint: 'an imported image ("nsdn image list") or the host root read-only',
    })
  const rootfs: ContainerSpec['rootfs'] =
    o.image !== undefined
      ? { image: validContainerName(str(o.image, w('image')), w('image')) }
      : { hostRoot: true }
  const namespaces =
    o.namespaces === undefined
      ? (['mnt', 'uts', 'ipc', 'pid', 'net', 'cgroup'] as NsName[])
      : strList(o.namespaces, w('namespaces')).map((n, i) => {
          if (!(NAMESPACES as readonly string[]).includes(n))
            throw new ConfigError(`unknown namespace ${shown(n)}`, `${w('namespaces')}[${i}]`, {
              hint: `one of ${NAMESPACES.join(', ')}`,
            })
          return n as NsName
        })
  for (const n of ['mnt', 'pid'] as const)
    if (!namespaces.includes(n))
      throw new ConfigError(`a container needs its own ${n} namespace`, w('namespaces'))
  const hostname = o.hostname === undefined ? name : str(o.hostname, w('hostname'))
  if (!/^[A-Za-z0-9][A-Za-z0-9.-]{0,63}$/.test(hostname))
    throw new ConfigError(`invalid hostname ${shown(hostname)}`, w('hostname'))
  const mounts = (o.mounts === undefined ? [] : (o.mounts as unknown[])).map((m, i): MountSpec => {
    const mw = `${w('mounts')}[${i}]`
    const mo = obj(m, mw)
    if (mo.type === 'tmpfs') {
      noUnknown(mo, ['type', 'target', 'options'], mw)
      return {
        type: 'tmpfs',
        target: absPath(mo.target, `${mw}.target`),
        ...(mo.options !== undefined ? { options: str(mo.options, `${mw}.options`) } : {}),
      }
    }
    if (mo.type !== 'bind' && mo.type !== undefined)
      throw new ConfigError(`unknown mount type ${shown(mo.type)}`, `${mw}.type`, {
        hint: '"bind" or "tmpfs" (proc, sys and dev are mounted by default)',
      })
    noUnknown(mo, ['type', 'source', 'target', 'readonly'], mw)
    const source = absPath(mo.source, `${mw}.source`)
    if (!fs.existsSync(source))
      throw new ConfigError(`bind source ${shown(source)} does not exist`, `${mw}.source`)
    return {
      type: 'bind',
      source,
      target: absPath(mo.target, `${mw}.target`),
      readonly: mo.readonly === true,
    }
  })
  const env =
    o.env === undefined
      ? []
      : Array.isArray(o.env)
        ? strList(o.env, w('env'))
        : Object.entries(obj(o.env, w('env'))).map(([k, v]) => `${k}=${String(v)}`)
  for (const [i, e] of env.entries())
    if (!/^[A-Za-z_][A-Za-z0-9_]*=/.test(e))
      throw new ConfigError(`${shown(e)} is not KEY=VALUE`, `${w('env')}[${i}]`)
  if (!env.some((e) => e.startsWith('PATH=')))
    env.unshift('PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin')
  const command = strList(o.command ?? [], w('command'))
  if (command.length === 0)
    throw new ConfigError('no command', w('command'), { hint: 'e.g. command: ["sh"]' })
  const capabilities =
    o.capabilities === undefined
      ? [...DEFAULT_CAPS]
      : strList(o.capabilities, w('capabilities')).map((c, i) => {
          const n = c.toUpperCase().replace(/^CAP_/, '')
          if (CAPS[n] === undefined)
            throw new ConfigError(`unknown capability ${shown(c)}`, `${w('capabilities')}[${i}]`)
          return n
        })
  const networks = (o.networks === undefined ? [] : (o.networks as unknown[])).map((n, i) => {
    const nw = `${w('networks')}[${i}]`
    const no = obj(n, nw)
    noUnknown(no, ['driver', 'conf', 'conflist', 'cni', 'ifname', 'mac'], nw)
    const mac = no.mac === undefined ? undefined : str(no.mac, `${nw}.mac`)
    if (mac !== undefined && !/^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/.test(mac))
      throw new ConfigError(`invalid MAC address ${shown(mac)}`, `${nw}.mac`, {
        hint: 'e.g. 02:00:00:00:00:01',
      })
    const common = {
      ifname: no.ifname === undefined ? `eth${i}` : str(no.ifname, `${nw}.ifname`),
      ...(mac ? { mac } : {}),
    }
    if ((no.driver === undefined) === (no.conflist === undefined && no.cni === undefined))
      throw new ConfigError('give either "driver" or a CNI "conflist" (or its JSON as "cni")', nw, {
        hint: 'an nsdn driver with its conf, or a CNI conflist file (or its JSON as "cni")',
      })
    if (no.driver !== undefined)
      return {
        driver: str(no.driver, `${nw}.driver`),
        conf: obj(no.conf ?? {}, `${nw}.conf`),
        ...common,
      }
    return { ...cniNetwork(no, nw), ...common }
  })
  if (networks.length && !namespaces.includes('net'))
    throw new ConfigError('networks need the net namespace', w('networks'))
  const user = namespaces.includes('user')
  return {
    name,
    hostname,
    rootfs,
    namespaces,
    uidMap: o.uidMap !== undefined ? idMaps(o.uidMap, w('uidMap')) : user ? DEFAULT_MAP : [],
    gidMap: o.gidMap !== undefined ? idMaps(o.gidMap, w('gidMap')) : user ? DEFAULT_MAP : [],
    mounts,
    env,
    cwd: o.cwd === undefined ? '/' : absPath(o.cwd, w('cwd')),
    command,
    capabilities,
    limits: o.limits === undefined ? {} : parseLimits(o.limits, w('limits'), cpus),
    networks,
  }
}

/** A CNI network: a conflist file read now, or its JSON; checked as nsdn's CNI side reads it. */
function cniNetwork(
  no: Record<string, unknown>,
  nw: string,
): { cni: Record<string, unknown>; conflist?: string } {
  // the CNI code is loaded only for a spec that has such a network
  const { parseConfList } = require('../cni/exec.js') as typeof import('../cni/exec.js')
  if (no.cni !== undefined) {
    // with the file it was read from, when a parsed spec comes back (clone): not read again
    const cni = obj(no.cni, `${nw}.cni`)
    parseConfList(Buffer.from(JSON.stringify(cni)), `${nw}.cni`)
    return no.conflist === undefined
      ? { cni }
      : { cni, conflist: str(no.conflist, `${nw}.conflist`) }
  }
  const file = str(no.conflist, `${nw}.conflist`)
  let bytes: Buffer
  try {
    bytes = fs.readFileSync(file)
  } catch (err) {
    throw new ConfigError(`cannot read ${shown(file)}: ${(err as Error).message}`, `${nw}.conflist`)
  }
  parseConfList(bytes, file)
  return { cni: JSON.parse(bytes.toString('utf8')) as Record<string, unknown>, conflist: file }
}

/** A parsed spec back in the input shape (parseSpec(toRaw(s)) equals s): to copy or edit one. */
export function toRaw(spec: ContainerSpec): Record<string, unknown> {
  const { rootfs, uidMap, gidMap, ...rest } = spec
  return {
    ...rest,
    ...('image' in rootfs ? { image: rootfs.image } : { hostRoot: true }),
    ...(uidMap.length ? { uidMap, gidMap } : {}),
  }
}

/** A spec file's object, unvalidated: JSON, or YAML when it ends in .yaml/.yml. */
export function readSpecFile(file: string): unknown {
  let text: string
  try {
    text = fs.readFileSync(file, 'utf8')
  } catch (err) {
    throw new ConfigError(`cannot read ${shown(file)}`, undefined, { cause: err })
  }
  try {
    // yaml is loaded only here: most commands never read a spec file
    return /\.ya?ml$/.test(file)
      ? (require('yaml') as typeof import('yaml')).parse(text, { prettyErrors: true })
      : JSON.parse(text)
  } catch (err) {
    throw new ConfigError(`cannot parse: ${(err as Error).message.split('\n')[0]}`, file)
  }
}

/** Read and validate a spec file. */
export function loadSpecFile(file: string, cpus?: Set<number>): ContainerSpec {
  return parseSpec(readSpecFile(file), file, cpus)
}
