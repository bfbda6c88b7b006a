/**
 * Config fields the veth drivers share (the CNI network config: name, type, cniVersion; mtu,
 * ipMasq), parsed from JSON with a field path in every error. Unknown keys are ignored, as the
 * CNI plugins ignore them: runtimes add their own (runtimeConfig, args, prevResult).
 * @module
 */
import { ConfigError } from '../errors.js'
import { type JsonObject, objectAt, optStringAt, stringAt } from '../ipam/fields.js'
import type { NetConfBase } from './api.js'

/** The path of a field: `where.key`, or `key` at the top. */
export const fieldPath = (where: string | undefined, key: string): string =>
  where ? `${where}.${key}` : key

/** The config object and its CNI base fields; `type` must name this driver. */
export function parseBase(
  raw: unknown,
  type: string,
  where?: string,
): { o: JsonObject; base: NetConfBase } {
  const o = objectAt(raw, where ?? 'config')
  const name = stringAt(o.name, fieldPath(where, 'name'))
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name))
    throw new ConfigError(`invalid network name "${name}"`, fieldPath(where, 'name'), {
      hint: 'start with a letter or digit; then letters, digits, "_", "." or "-"',
    })
  if (o.type !== undefined && o.type !== type)
    throw new ConfigError(
      `type is ${JSON.stringify(o.type)}, not "${type}"`,
      fieldPath(where, 'type'),
      {
        hint: `this is the ${type} driver; set "type": "${type}"`,
      },
    )
  const cniVersion = optStringAt(o, 'cniVersion', where ?? 'config')
  return { o, base: { name, type, ...(cniVersion !== undefined ? { cniVersion } : {}) } }
}

/** o[key] as a boolean; `dflt` when absent. */
export function boolAt(
  o: JsonObject,
  key: string,
  where: string | undefined,
  dflt = false,
): boolean {
  const v = o[key]
  if (v === undefined) return dflt
  if (typeof v !== 'boolean')
    throw new ConfigError(`must be true or false, got ${JSON.stringify(v)}`, fieldPath(where, key))
  return v
}

/** o[key] as a whole number from min to max, or undefined when absent. */
export function optIntAt(
  o: JsonObject,
  key: string,
  where: string | undefined,
  min: number,
  max: number,
): number | undefined {
  const v = o[key]
  if (v === undefined) return undefined
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    throw new ConfigError(
      `must be a whole number from ${min} to ${max}, got ${JSON.stringify(v)}`,
      fieldPath(where, key),
    )
  return v
}

/** An interface MTU: IPv4's minimum (68) up to the kernel's largest (65535). */
export const optMtuAt = (o: JsonObject, where: string | undefined): number | undefined =>
  optIntAt(o, 'mtu', where, 68, 65535)
