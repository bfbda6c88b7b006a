/**
 * The import rules of the architecture: only src/ffi/ imports koffi, only src/netlink/ imports
 * the netlink package, drivers reach the kernel through src/ only, and no import goes up a
 * layer: the kernel layer never imports drivers or fronts, drivers never import fronts, and a
 * front never imports another front's command code.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'

// dist/test/unit -> the repository, where the .ts sources are
const root = path.resolve(__dirname, '../../..')

function sources(dir: string): string[] {
  const out: string[] = []
  if (!fs.existsSync(path.join(root, dir))) return out
  for (const e of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const rel = path.join(dir, e.name)
    if (e.isDirectory()) out.push(...sources(rel))
    else if (e.name.endsWith('.ts')) out.push(rel)
  }
  return out
}

function importers(pkg: string): string[] {
  const re = new RegExp(`(from|require\\()\\s*'${pkg}'`)
  return [...sources('src'), ...sources('plugins')].filter((f) =>
    re.test(fs.readFileSync(path.join(root, f), 'utf8')),
  )
}

test('only src/ffi/ imports koffi', () => {
  assert.deepEqual(importers('koffi'), ['src/ffi/libc.ts'])
})

test('only src/netlink/ imports the netlink package', () => {
  const outside = importers('netlink').filter((f) => !f.startsWith('src/netlink/'))
  assert.deepEqual(outside, [])
})

test('product code never runs ip, brctl, unshare or nsenter', () => {
  const bad = [...sources('src'), ...sources('plugins')].filter((f) =>
    /(spawn|exec|execFile)(Sync)?\(\s*['"](ip|brctl|unshare|nsenter)['"]/.test(
      fs.readFileSync(path.join(root, f), 'utf8'),
    ),
  )
  assert.deepEqual(bad, [])
})

/** The fronts: the CLI, the lab engine, the CNI side, the runtime, the lab's web view. */
const FRONTS = ['cli', 'lab', 'cni', 'runtime', 'web']

/** Where a file sits: its layer, and for a front file the front and whether it is command code. */
type Place =
  | { layer: 'kernel' | 'drivers' | 'library' }
  | { layer: 'front'; front: string; command: boolean }

const RANK = { kernel: 0, drivers: 1, library: 2, front: 3 } as const

/** The kernel layer: everything the drivers build on, and the files at the top of src/. */
const KERNEL_DIRS = ['ffi', 'netns', 'netlink', 'ovs', 'ipam', 'teach']

/**
 * The layer of a source file, or undefined when it has none yet (a new folder must be placed
 * here). The whole of src/cli is command code; in another front, its `commands/` folder, a
 * `cli/` folder and a `main.ts` are; the rest is library code other fronts may use (the lab
 * engine may use the runtime's library API).
 */
export function placeOf(file: string): Place | undefined {
  const parts = file.replace(/\.(ts|js)$/, '').split('/')
  if (parts[0] === 'plugins') return { layer: 'drivers' }
  if (parts[0] !== 'src' || parts.length < 2) return undefined
  const top = parts[1]!
  if (parts.length === 2) return top === 'index' ? { layer: 'library' } : { layer: 'kernel' }
  if (KERNEL_DIRS.includes(top)) return { layer: 'kernel' }
  if (top === 'drivers') return { layer: 'drivers' }
  // The demo runs nsdn commands over the kernel layer: library code of the CLI's `demo`.
  if (top === 'demo') return { layer: 'library' }
  if (FRONTS.includes(top)) {
    const sub = parts[2]
    const command = top === 'cli' || sub === 'commands' || sub === 'cli' || sub === 'main'
    return { layer: 'front', front: top, command }
  }
  return undefined
}

/** Why importer may not import target, or undefined when it may. */
export function violation(importer: string, target: string): string | undefined {
  const a = placeOf(importer)
  const b = placeOf(target)
  if (!a || !b) return undefined
  if (b.layer === 'front' && a.layer !== 'front')
    return `${a.layer} code imports front code (${b.front})`
  if (a.layer === 'front' && b.layer === 'front') {
    if (a.front !== b.front && b.command)
      return `front ${a.front} imports the command code of front ${b.front}`
    return undefined
  }
  if (RANK[b.layer] > RANK[a.layer]) return `${a.layer} code imports ${b.layer} code`
  return undefined
}

/** Relative imports of a source file (import/export from, require, import()), as repo paths. */
function relativeImports(file: string): string[] {
  const text = fs.readFileSync(path.join(root, file), 'utf8')
  const re = /(?:from\s*|require\(\s*|import\(\s*)'(\.{1,2}\/[^']+)'/g
  return [...text.matchAll(re)].map((m) =>
    path.join(path.dirname(file), m[1]!).replace(/\.js$/, '.ts'),
  )
}

test('every source file has a layer (a new folder gets one in this test)', () => {
  const unplaced = [...sources('src'), ...sources('plugins')].filter((f) => !placeOf(f))
  assert.deepEqual(unplaced, [])
})

test("no import goes up a layer or into another front's commands", () => {
  const bad: string[] = []
  for (const f of [...sources('src'), ...sources('plugins')])
    for (const target of relativeImports(f)) {
      const why = violation(f, target)
      if (why) bad.push(`${f} -> ${target}: ${why}`)
    }
  assert.deepEqual(bad, [])
})

test('the layer rule itself: what it forbids and what it allows', () => {
  const forbidden: [string, string][] = [
    ['src/netlink/link.ts', 'src/drivers/veth.ts'], // kernel -> drivers
    ['src/ipam/index.ts', 'plugins/bridge/index.ts'], // kernel -> a driver
    ['src/op.ts', 'src/cli/context.ts'], // kernel -> cli
    ['src/drivers/attach.ts', 'src/cli/output.ts'], // drivers -> cli
    ['plugins/ovs/index.ts', 'src/cli/errors.ts'], // a driver -> cli
    ['src/drivers/api.ts', 'src/runtime/spawn.ts'], // drivers -> a coming front
    ['src/index.ts', 'src/cli/program.ts'], // the library surface -> cli
    ['src/lab/engine.ts', 'src/cli/commands/net.ts'], // a front -> the CLI
    ['src/cni/skel.ts', 'src/lab/commands/deploy.ts'], // a front -> another's commands
    ['src/runtime/main.ts', 'src/cni/main.ts'],
    ['src/web/live.ts', 'src/cli/commands/lab.ts'], // the web library -> the CLI
  ]
  for (const [a, b] of forbidden) assert.ok(violation(a, b), `${a} -> ${b} must be refused`)
  const allowed: [string, string][] = [
    ['src/cli/commands/net.ts', 'src/drivers/attach.ts'],
    ['plugins/vlan/index.ts', 'src/netlink/features.ts'],
    ['src/drivers/veth.ts', 'src/netlink/link.ts'],
    ['src/cli/commands/demo.ts', 'src/demo/ovs-vlan.ts'],
    ['src/lab/engine.ts', 'src/runtime/container.ts'], // a front's library API
    ['src/cli/commands/lab.ts', 'src/lab/engine.ts'],
    ['src/cni/skel.ts', 'src/drivers/registry.ts'],
    ['src/web/live.ts', 'src/lab/verify.ts'], // the web library uses the lab's library
  ]
  for (const [a, b] of allowed) assert.equal(violation(a, b), undefined, `${a} -> ${b}`)
})

test('the runtime and the web library import no front command code and never print or exit', () => {
  const web = sources('src/web').filter((f) => {
    const p = placeOf(f)
    return p?.layer === 'front' && !p.command
  })
  const bad = [...sources('src/runtime'), ...web].filter((f) => {
    const text = fs.readFileSync(path.join(root, f), 'utf8')
    return /from '\.\.\/cli\//.test(text) || /process\.(exit|stdout|stderr)\b/.test(text)
  })
  assert.deepEqual(bad, [])
})
