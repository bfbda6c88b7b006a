/**
 * Random mutations of lab files for property tests: a field replaced with any JSON value, a
 * field dropped, or the text cut and spliced.
 */
import fc from 'fast-check'
import YAML from 'yaml'

/** Mutations: a field replaced with anything, a field dropped, or the text cut or spliced. */
const mutation = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.jsonValue() }),
  fc.record({ kind: fc.constant('drop' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('text' as const),
    at: fc.nat(),
    cut: fc.nat(20),
    insert: fc.string({ maxLength: 8 }),
  }),
)

export type Mut =
  | { kind: 'set'; at: number; value: unknown }
  | { kind: 'drop'; at: number }
  | { kind: 'text'; at: number; cut: number; insert: string }

/** Every [container, key] pair in a parsed document. */
function slots(
  v: unknown,
  out: [Record<string, unknown> | unknown[], string | number][] = [],
): typeof out {
  if (Array.isArray(v)) v.forEach((x, i) => (out.push([v, i]), slots(x, out)))
  else if (v && typeof v === 'object')
    for (const [k, x] of Object.entries(v))
      out.push([v as Record<string, unknown>, k]), slots(x, out)
  return out
}

export function mutate(text: string, muts: Mut[]): string {
  let doc = YAML.parse(text) as unknown
  for (const m of muts) {
    if (m.kind === 'text') {
      const s = YAML.stringify(doc)
      const i = m.at % (s.length + 1)
      return s.slice(0, i) + m.insert + s.slice(i + m.cut)
    }
    const all = slots(doc)
    if (!all.length) break
    const [obj, key] = all[m.at % all.length]!
    if (m.kind === 'set') (obj as Record<string, unknown>)[key as string] = m.value
    else if (Array.isArray(obj)) obj.splice(key as number, 1)
    else delete (obj as Record<string, unknown>)[key as string]
  }
  doc = doc ?? {}
  return YAML.stringify(doc)
}

export const mutations = fc.array(mutation as fc.Arbitrary<Mut>, { minLength: 1, maxLength: 3 })
