/**
 * The import rules of the architecture: only src/ffi/ imports koffi, only src/netlink/ imports
 * the netlink package, and drivers reach the kernel through src/ only.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'

// dist/test/unit -> the repository, where the .ts sources are
const root = path.resolve(__dirname, '../../..')

function sources(dir: string): string[] {
  const out: string[] = []
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

test('the runtime is a library: it imports no front and never prints or exits', () => {
  const bad = sources('src/runtime').filter((f) => {
    const text = fs.readFileSync(path.join(root, f), 'utf8')
    return /from '\.\.\/cli\//.test(text) || /process\.(exit|stdout|stderr)\b/.test(text)
  })
  assert.deepEqual(bad, [])
})
