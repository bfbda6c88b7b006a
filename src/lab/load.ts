/**
 * A lab file: YAML parsed (js-yaml: a 1,000-host lab in ~50 ms, where the position-keeping
 * `yaml` package takes ~500 ms), checked against the published JSON Schema
 * (scenarios/schema.json, with `ajv`). Every error names the file, line, column and field path,
 * and says how to fix it: positions come from `yaml`, loaded only when there is an error to
 * place. Nothing here touches the kernel.
 * @module
 */
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import type { ErrorObject } from 'ajv'
import jsYaml from 'js-yaml'
import { requireCached } from '../bundle.js'
import { ConfigError } from '../errors.js'
import { clabPath, fromClab, isClab } from './clab.js'

/** The raw lab as written (the schema's shape). */
export interface RawLab {
  name: string
  uplinks?: string[]
  defaults?: {
    kind?: RawKind
    mtu?: number
    linkLocal?: boolean
    mcastSnooping?: boolean
  } & RawContainerFields
  nodes: Record<string, RawNode>
  links?: RawLink[]
  checks?: RawCheck[]
}
export type RawKind = 'host' | 'router' | 'root' | 'bridge' | 'ovs' | 'container'
/** What a container node (or the defaults) may say about its container. */
export interface RawContainerFields {
  image?: string
  command?: string[] | string
  limits?: Record<string, string | number>
  env?: Record<string, string | number | boolean> | string[]
}
export interface RawNode extends RawContainerFields {
  kind?: RawKind
  mtu?: number
  addresses?: Record<string, string | string[]>
  routes?: { to: string; via?: string; dev?: string }[]
  nat?: string[]
  subnet?: string
  hostname?: string
  linkLocal?: boolean
  mcastSnooping?: boolean
}
export interface RawLink {
  endpoints: [string, string]
  vlan?: number
  trunks?: number[]
  mtu?: number
  rate?: string
  delay?: string
  loss?: string
}
export interface RawCheck {
  from: string
  to: string
  expect: 'reach' | 'isolated' | 'throughput'
  min?: string
  max?: string
}

export type FieldPath = readonly (string | number)[]

/** A loaded lab: the raw value, and where each field was written. */
export interface Loaded {
  raw: RawLab
  file: string
  /** The file's text, for the state (destroy works when the file has changed or is gone). */
  text: string
  /** `file:line:col field.path` of a field (the nearest existing parent when it is absent). */
  at(p: FieldPath): string
  /** What an import (containerlab) left out, one line each. */
  notes: string[]
}

/** The published schema: one file, read by editors (yaml-language-server) and by the loader. */
export const SCHEMA_FILE = path.resolve(__dirname, '../../../scenarios/schema.json')

export const fieldText = (p: FieldPath): string =>
  p.length
    ? p.map((k, i) => (typeof k === 'number' ? `[${k}]` : i ? `.${k}` : k)).join('')
    : '(top)'

type Validate = ((v: unknown) => boolean) & { errors?: ErrorObject[] | null }
let validator: Validate | undefined
/** After the first good validation: store V8's code cache of the validator's code. */
let storeCode = (): void => undefined

/**
 * The schema's validator. Compiling the schema costs ~100 ms of CPU per process, so the
 * compiled code (ajv's standalone output) is cached next to this module, keyed by the schema's
 * hash; and V8's compiling of that code (~20 ms for a first use) is cached beside it in turn.
 */
function schemaValidator(): Validate {
  if (validator) return validator
  const text = fs.readFileSync(SCHEMA_FILE, 'utf8')
  const hash = createHash('sha256').update(text).digest('hex').slice(0, 16)
  const cache = path.join(__dirname, `.schema-${hash}.cjs`)
  try {
    const m = requireCached(cache)
    validator = m.exports as Validate
    storeCode = m.store
    return validator
  } catch {
    // not compiled yet
  }
  const Ajv = (require('ajv') as typeof import('ajv')).default
  const standalone = (require('ajv/dist/standalone') as typeof import('ajv/dist/standalone'))
    .default
  const ajv = new Ajv({ allErrors: false, strict: false, code: { source: true } })
  const v = ajv.compile(JSON.parse(text) as object) as Validate
  try {
    const tmp = `${cache}.${process.pid}`
    fs.writeFileSync(tmp, standalone(ajv, v as unknown as Parameters<typeof standalone>[1]))
    fs.renameSync(tmp, cache)
  } catch {
    // a read-only install compiles every time
  }
  validator = v
  return v
}

const HINTS: Record<string, (e: ErrorObject) => string> = {
  enum: (e) => `use one of: ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}`,
  additionalProperties: (e) =>
    `remove "${(e.params as { additionalProperty: string }).additionalProperty}" ` +
    '(scenarios/schema.json lists the fields)',
  required: (e) => `add "${(e.params as { missingProperty: string }).missingProperty}"`,
  pattern: () => 'see scenarios/README.md for the format',
  type: (e) => `write a ${(e.params as { type: string }).type}`,
  maxLength: (e) => `at most ${(e.params as { limit: number }).limit} characters`,
  minimum: (e) => `at least ${(e.params as { limit: number }).limit}`,
  maximum: (e) => `at most ${(e.params as { limit: number }).limit}`,
}

function schemaMessage(e: ErrorObject): string {
  if (e.keyword === 'additionalProperties')
    return `unknown field "${(e.params as { additionalProperty: string }).additionalProperty}"`
  if (e.keyword === 'propertyNames') return `invalid name ${JSON.stringify(e.propertyName ?? '')}`
  return e.message ?? e.keyword
}

/** `file:line:col` of positions in text, and of fields, through the `yaml` package. */
function positions(
  text: string,
  file: string,
): { pos(offset: number): string; at(p: FieldPath): string } {
  const YAML = require('yaml') as typeof import('yaml')
  const lc = new YAML.LineCounter()
  const doc = YAML.parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: false })
  const pos = (offset: number): string => {
    const p = lc.linePos(offset)
    return `${file}:${p.line}:${p.col}`
  }
  const at = (p: FieldPath): string => {
    for (let n = p.length; n >= 0; n--) {
      const node = doc.getIn(p.slice(0, n), true) as
        | { range?: [number, number, number] }
        | undefined
      const range = n === 0 ? (doc.contents as { range?: [number] } | null)?.range : node?.range
      if (range) return `${pos(range[0])} ${fieldText(p)}`
    }
    return `${file} ${fieldText(p)}`
  }
  return { pos, at }
}

/** Parse and schema-check lab text; `file` is for messages. Throws ConfigError (E_CONFIG). */
export function loadText(text: string, file: string): Loaded {
  let raw: unknown
  try {
    raw = jsYaml.load(text, { filename: file })
  } catch (err) {
    const e = err as { reason?: string; mark?: { line: number; column: number }; message: string }
    const where = e.mark ? `${file}:${e.mark.line + 1}:${e.mark.column + 1}` : file
    const dup = e.reason?.startsWith('duplicated mapping key')
    throw new ConfigError(`YAML: ${e.reason ?? e.message.split('\n')[0]}`, where, {
      hint: dup
        ? 'each name may appear once in a map: rename or merge the two'
        : 'fix the YAML syntax (indentation, quotes, a missing ":")',
    })
  }
  const notes: string[] = []
  const clab = isClab(raw)
  if (clab) raw = fromClab(raw as Record<string, unknown>, file, notes)
  let located: ReturnType<typeof positions> | undefined
  const at = (p: FieldPath): string =>
    (located ??= positions(text, file)).at(clab ? clabPath(p) : p)
  const validate = schemaValidator()
  if (!validate(raw)) {
    const e = validate.errors![0]!
    const p: (string | number)[] = e.instancePath
      .split('/')
      .slice(1)
      .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
      .map((s) => (/^\d+$/.test(s) ? Number(s) : s))
    if (e.keyword === 'propertyNames' && e.propertyName) p.push(e.propertyName)
    const hint = HINTS[e.keyword]?.(e) ?? 'see scenarios/schema.json'
    throw new ConfigError(schemaMessage(e), at(p), { hint })
  }
  storeCode()
  storeCode = () => undefined
  return { raw: raw as RawLab, file, text, at, notes }
}

/** Read and load a lab file. */
export function loadFile(file: string): Loaded {
  let text: string
  try {
    text = fs.readFileSync(file, 'utf8')
  } catch (err) {
    throw new ConfigError(`cannot read the lab file: ${(err as Error).message}`, file, {
      hint: 'give the path of a .yaml lab file (scenarios/ has examples)',
    })
  }
  return loadText(text, file)
}
