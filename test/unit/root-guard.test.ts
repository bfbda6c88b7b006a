/**
 * Without root nothing may pass by accident: a root test file reports itself skipped with the
 * reason, and `npm test` (scripts/test.sh) fails before running anything.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import path from 'node:path'
import { test } from 'node:test'

const ROOT = path.resolve(__dirname, '../../..')
const NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups']
const skip = process.getuid?.() === 0 ? false : 'dropping to nobody (setpriv) needs root'

/** Run argv as nobody, outside this test run (no NODE_TEST_CONTEXT inherited). */
function asNobody(argv: string[]): { status: number | null; out: string } {
  const env = { ...process.env }
  delete env.NODE_TEST_CONTEXT
  const [cmd, ...args] = [...NOBODY, ...argv]
  const r = spawnSync(cmd!, args, { cwd: ROOT, env, encoding: 'utf8', timeout: 60_000 })
  return { status: r.status, out: `${r.stdout}${r.stderr}` }
}

test('a root test file run without root is reported skipped with the reason', { skip }, () => {
  const file = path.join(ROOT, 'dist/test/root/netns.root.test.js')
  const r = asNobody([process.execPath, '--test', '--test-reporter=tap', file])
  assert.equal(r.status, 0, r.out)
  assert.match(r.out, /^ok 1 - netns\.root\.test # SKIP root tests need root/m)
  assert.match(r.out, /^# pass 0$/m)
  assert.match(r.out, /^# skipped 1$/m)
})

test('npm test without root fails at once, and says why', { skip }, () => {
  const r = asNobody(['bash', path.join(ROOT, 'scripts/test.sh')])
  assert.equal(r.status, 1, r.out)
  assert.match(r.out, /^npm test: FAILED: not root\./m)
  assert.doesNotMatch(r.out, /^# (pass|tests) /m, 'no test ran')
})
