/**
 * Typed fields out of parsed JSON config. Each failure is a ConfigError naming the field path
 * (`ipam.ranges[0][1].subnet`), so a user can find the field in their file.
 * @module
 */
import { ConfigError } from '../errors.js'

export type JsonObject = Record<string, unknown>

/** The JSON type of v, for messages: "a number", "null". */
function jsonType(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'a list'
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`
}

/**
 * v is not `what` (`a string`): "is missing" when the field is absent (JSON has no undefined),
 * else what it is instead.
 */
function wrongType(v: unknown, what: string, where: string, hint: string): ConfigError {
  if (v !== undefined)
    return new ConfigError(`must be ${what}, got ${jsonType(v)}`, where, { hint })
  const key = /(\w+)$/.exec(where)?.[1]
  return new ConfigError('is missing', where, { hint: key ? `add "${key}", ${what}` : hint })
}

export function objectAt(
  v: unknown,
  where: string,
  hint = 'write a JSON object, {...}',
): JsonObject {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw wrongType(v, 'an object', where, hint)
  return v as JsonObject
}

export function listAt(v: unknown, where: string, hint = 'write a JSON list, [...]'): unknown[] {
  if (!Array.isArray(v)) throw wrongType(v, 'a list', where, hint)
  return v
}

/** A non-empty string. */
export function stringAt(v: unknown, where: string, hint = 'write a JSON string'): string {
  if (typeof v !== 'string') throw wrongType(v, 'a string', where, hint)
  if (v === '') throw new ConfigError('must not be empty', where, { hint })
  return v
}

/** o[key] as a non-empty string, or undefined when the field is absent. */
export function optStringAt(o: JsonObject, key: string, where: string): string | undefined {
  return o[key] === undefined ? undefined : stringAt(o[key], `${where}.${key}`)
}

/** o[key] as a list of non-empty strings, or undefined when the field is absent. */
export function optStringListAt(o: JsonObject, key: string, where: string): string[] | undefined {
  const v = o[key]
  if (v === undefined) return undefined
  return listAt(v, `${where}.${key}`).map((s, i) => stringAt(s, `${where}.${key}[${i}]`))
}
