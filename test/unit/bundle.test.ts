/**
 * The fronts as setup bundles them (scripts/bundle.js, src/bundle.ts): V8 accepts each stored
 * code cache, and the bundled CLI answers as the plain modules do (NSDN_NO_BUNDLE=1), where a
 * module's own directory matters too (the driver folders, the lab schema beside dist/).
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import { bundleNotBuilt, cacheAccepted } from '../helpers/bundle.js'

const DIST = path.resolve(__dirname, '../..')
const MAIN = path.join(DIST, 'src/cli/main.js')
const notBuilt = (): string | undefined => bundleNotBuilt('cli')

for (const front of ['cli', 'cni'] as const)
  test(`V8 accepts the code cache stored beside the ${front} bundle`, (t) => {
    const why = bundleNotBuilt(front)
    if (why) return t.skip(why)
    assert.ok(cacheAccepted(front))
  })

test('the bundled CLI answers as the plain modules do', (t) => {
  const why = notBuilt()
  if (why) return t.skip(why)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsdn-bundle-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const bad = path.join(dir, 'bad.yaml')
  fs.writeFileSync(bad, 'name: bad\nnodes:\n  h1: { kind: hots }\n')
  const run = (args: string[], env: Record<string, string>) => {
    const r = spawnSync(process.execPath, [MAIN, ...args], {
      env: { PATH: process.env.PATH, ...env },
      encoding: 'utf8',
    })
    return { status: r.status, stdout: r.stdout, stderr: r.stderr }
  }
  const scenario = path.resolve(DIST, '../scenarios/star-250.yaml')
  const cases = [
    ['--help'],
    ['lab', '--help'],
    ['lab', 'validate', scenario],
    ['lab', 'validate', bad],
    ['--json', 'lab', 'validate', bad],
    ['net', 'drivers'],
    ['no-such-command'],
    ['link', 'add', 'x', 'type', 'no-such-kind', '--dry-run'],
    // IPv6 text: node:net's isIPv6 behind src/ip-text.ts
    ['--dry-run', 'addr', 'add', 'fd00::1/64', 'dev', 'lo'],
    ['--dry-run', 'addr', 'add', 'fd00::1::2/64', 'dev', 'lo'],
  ]
  for (const args of cases) {
    const a = run(args, {})
    assert.deepEqual(a, run(args, { NSDN_NO_BUNDLE: '1' }), args.join(' '))
    assert.ok(a.stdout.trim() || a.stderr.trim(), `${args.join(' ')}: an answer`)
  }
  assert.match(run(['net', 'drivers'], {}).stdout, new RegExp(`${DIST}/plugins/bridge`))
  assert.match(run(['lab', 'validate', bad], {}).stderr, /bad\.yaml:3:\d+/)
})
