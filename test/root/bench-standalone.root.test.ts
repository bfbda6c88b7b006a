import { sandboxThisFile } from '../helpers/sandbox.js'
sandboxThisFile()

/**
 * The project stands alone: the star benchmark runs every one of its methods from a copy of
 * the repository with nothing beside it (no ../shared), and no code reaches outside the
 * repository for them.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, test } from 'node:test'
import { METHODS } from '../../bench/format.js'
import { netnsNames, strayLinks } from '../helpers/kernel.js'

const REPO = path.resolve(__dirname, '../../..')
// Not on /run: each method's sandbox mounts a fresh /run over it.
const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'nsdn-t-alone-'))
const copy = path.join(parent, 'nsdn')
after(() => fs.rmSync(parent, { recursive: true, force: true }))

/** The repository's files, without node_modules (linked: packages are not ../shared) and .git. */
function copyRepository(): void {
  fs.cpSync(REPO, copy, {
    recursive: true,
    filter: (src) => !['node_modules', '.git'].includes(path.relative(REPO, src)),
  })
  fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(copy, 'node_modules'))
}

test('no code of the repository reaches ../shared', () => {
  const hits: string[] = []
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(path.join(REPO, dir), { withFileTypes: true })) {
      const rel = path.join(dir, e.name)
      if (e.isDirectory()) walk(rel)
      else if (
        /\.(ts|sh|py|json)$/.test(e.name) &&
        rel !== 'test/root/bench-standalone.root.test.ts'
      )
        if (/\.\.\/shared|\.\.', 'shared'/.test(fs.readFileSync(path.join(REPO, rel), 'utf8')))
          hits.push(rel)
    }
  }
  for (const dir of ['src', 'plugins', 'bench', 'scripts', 'test']) walk(dir)
  assert.deepEqual(hits, [])
})

test('npm run bench runs every method from a copy with nothing beside it', async (t) => {
  copyRepository()
  assert.ok(!fs.existsSync(path.join(parent, 'shared')), 'no ../shared beside the copy')
  const r = spawnSync(
    process.execPath,
    [path.join(copy, 'dist/bench/main.js'), 'star', '--n', '3', '--json'],
    { cwd: copy, encoding: 'utf8', timeout: 300_000 },
  )
  assert.equal(r.status, 0, r.stderr)
  const rows = JSON.parse(r.stdout) as { method: string; verified: boolean; error?: string }[]
  // A method is skipped only for a missing package (`scripts/setup.sh bench` installs them).
  const skipped = new Map(
    [...r.stderr.matchAll(/^bench: skipping (\S+): (.*)$/gm)].map((m) => [m[1], m[2]]),
  )
  for (const why of skipped.values()) assert.match(why ?? '', /not installed|cannot import/)
  for (const m of METHODS)
    await t.test(m, { skip: skipped.get(m) ?? false }, () => {
      const row = rows.find((x) => x.method === m)
      assert.ok(row, `${m}: no result in ${r.stdout}`)
      assert.ok(row.verified, `${m}: ${row.error}`)
    })
  assert.ok(!skipped.has('nsdn') && !skipped.has('ip') && !skipped.has('ip-batch'), r.stderr)
})

test('nothing of ours remains', () => {
  assert.deepEqual(netnsNames(), [])
  assert.deepEqual(strayLinks(), [])
})
