/**
 * The CNI specification as data: the versions nsdn speaks, Results in the shape each version
 * writes them, and error JSON. Drivers return Results in the 1.x shape (src/drivers/api.ts);
 * this file writes them in the version a config asks for and reads any version a plugin
 * answers in. Facts from the SPEC: 0.3.x/0.4.0 IP configs carry `version` ("4"/"6"), 1.0.0
 * drops it; 1.1.0 adds route mtu/advmss/priority/table/scope and the STATUS and GC verbs; CHECK
 * exists from 0.4.0 on.
 * @module
 */
import type { CniResult } from '../drivers/api.js'
import { ERROR_TABLE, NsdnError, errorMessage } from '../errors.js'

type Json = Record<string, unknown>
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v)

/** Versions nsdn's plugins accept and its runtime side writes, oldest first. */
export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const
export const LATEST_VERSION = '1.1.0'

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'STATUS' | 'GC' | 'VERSION'
export const COMMANDS: readonly CniCommand[] = ['ADD', 'DEL', 'CHECK', 'STATUS', 'GC', 'VERSION']

/** -1, 0, 1 as a is older than, equal to, newer than b ("1.0.0" vs "0.4.0"). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number)
  const pb = b.split('.').map(Number)
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0)
    if (d) return Math.sign(d)
  }
  return 0
}

export function isSupported(v: string): boolean {
  return (SUPPORTED_VERSIONS as readonly string[]).includes(v)
}

/** The version a verb needs at least: CHECK came with 0.4.0, STATUS and GC with 1.1.0. */
export function minVersionFor(cmd: CniCommand): string | undefined {
  if (cmd === 'CHECK') return '0.4.0'
  if (cmd === 'STATUS' || cmd === 'GC') return '1.1.0'
  return undefined
}

/** The version a config asks for, when it names a supported one; else the latest. */
export function versionOf(conf: unknown): string {
  const v = isObj(conf) ? conf.cniVersion : undefined
  return typeof v === 'string' && isSupported(v) ? v : LATEST_VERSION
}

/** The reply to VERSION. */
export function versionInfo(): { cniVersion: string; supportedVersions: string[] } {
  return { cniVersion: LATEST_VERSION, supportedVersions: [...SUPPORTED_VERSIONS] }
}

/**
 * Read a Result of any supported version (a plugin's answer, a prevResult, a cache entry) into
 * the 1.x shape drivers use. Fields of a later version are kept: writing decides what stays.
 */
export function readResult(raw: unknown): CniResult {
  if (!isObj(raw)) throw new NsdnError('E_DECODE', 'a CNI result must be a JSON object')
  if (raw.ip4 !== undefined || raw.ip6 !== undefined)
    throw new NsdnError('E_CNI_VERSION', 'CNI results before 0.3.0 (ip4/ip6) are not supported', {
      hint: `use cniVersion ${SUPPORTED_VERSIONS.join(', ')}`,
    })
  const r = structuredClone(raw) as Json & CniResult
  if (Array.isArray(r.ips))
    r.ips = r.ips.map((ip) => {
      const { version: _v, ...rest } = ip as typeof ip & { version?: string }
      return rest
    })
  return r
}

const ROUTE_11 = ['mtu', 'advmss', 'priority', 'table', 'scope'] as const
const IFACE_11 = ['mtu', 'socketPath', 'pciID'] as const

/** A Result written in `version`: what that version's readers expect, and nothing they refuse. */
export function writeResult(result: CniResult, version: string): Json {
  const out: Json = { cniVersion: version }
  const pre1 = compareVersions(version, '1.0.0') < 0
  const pre11 = compareVersions(version, '1.1.0') < 0
  if (result.interfaces)
    out.interfaces = result.interfaces.map((i) => {
      const c: Json = { ...i }
      if (pre11) for (const k of IFACE_11) delete c[k]
      return c
    })
  out.ips = (result.ips ?? []).map((ip) => {
    if (!pre1) return { ...ip }
    const version4or6 = ip.address.includes(':') ? '6' : '4'
    return { version: version4or6, ...ip }
  })
  if (result.routes)
    out.routes = result.routes.map((rt) => {
      const c: Json = { ...rt }
      if (pre11) for (const k of ROUTE_11) delete c[k]
      return c
    })
  if (result.dns && Object.keys(result.dns).length) out.dns = { ...result.dns }
  return out
}

/** The spec's error JSON. */
export interface CniErrorJson {
  cniVersion: string
  code: number
  msg: string
  details?: string
}

/** The CNI code of an error: an NsdnError's code as the table maps it, anything else 999. */
export function cniCode(err: unknown): number {
  return err instanceof NsdnError ? ERROR_TABLE[err.code].cni : ERROR_TABLE.E_INTERNAL.cni
}

/**
 * The error JSON of err, always with a cniVersion: the config's when it named a supported one,
 * else the latest (a runtime reads the code and msg of any version).
 */
export function errorJson(err: unknown, cniVersion: string | undefined): CniErrorJson {
  const version = cniVersion && isSupported(cniVersion) ? cniVersion : LATEST_VERSION
  const details = [
    err instanceof NsdnError ? err.details : undefined,
    err instanceof NsdnError && err.hint ? `hint: ${err.hint}` : undefined,
    err instanceof Error && err.cause !== undefined
      ? `cause: ${errorMessage(err.cause)}`
      : undefined,
  ].filter((s): s is string => !!s)
  return {
    cniVersion: version,
    code: cniCode(err),
    msg: errorMessage(err),
    ...(details.length ? { details: details.join('\n') } : {}),
  }
}

/** A plugin's error JSON (read by the runtime side) as an error with the plugin's code. */
export class CniPluginError extends NsdnError {
  constructor(
    readonly plugin: string,
    readonly cniError: { code: number; msg: string; details?: string },
  ) {
    super(
      codeFromCni(cniError.code),
      `plugin ${plugin}: ${cniError.msg}`,
      cniError.details ? { details: cniError.details } : {},
    )
  }
}

/** The nsdn code for a spec error code (the reverse of the table; unknown codes are E_EXEC). */
function codeFromCni(code: number): NsdnError['code'] {
  for (const [k, v] of Object.entries(ERROR_TABLE))
    if (v.cni === code) return k as NsdnError['code']
  return 'E_EXEC'
}
