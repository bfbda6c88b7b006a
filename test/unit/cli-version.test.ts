/** `nsdn --version`: the package's version, answered before any command module is loaded. */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'

const ROOT = path.resolve(__dirname, '../../..')
const MAIN = path.join(ROOT, 'dist/src/cli/main.js')
const { version } = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  version: string
}

const nsdn = (...args: string[]): ReturnType<typeof spawnSync> =>
  spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8' })

test('nsdn --version and -V print the version of package.json and exit 0', () => {
  for (const args of [['--version'], ['-V'], ['--json', '--version']]) {
    const r = nsdn(...args)
    assert.equal(r.status, 0, `${args.join(' ')}: ${String(r.stderr)}`)
    assert.equal(r.stdout, `${version}\n`, args.join(' '))
    assert.equal(r.stderr, '', args.join(' '))
  }
  assert.match(String(nsdn('--help').stdout), /-V, --version +print the version of nsdn/)
})

test('nsdn --version loads no command, no commander, no netlink, no logger', () => {
  // The modules loaded when main.js has answered; start-up time is what this protects.
  const probe =
    `process.argv = [process.argv[0], 'nsdn', '--version'];` +
    `require(${JSON.stringify(MAIN)});` +
    `process.on('exit', () => process.stderr.write(JSON.stringify(Object.keys(require.cache))))`
  const r = spawnSync(process.execPath, ['-e', probe], { encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  assert.equal(r.stdout, `${version}\n`)
  const loaded = (JSON.parse(r.stderr) as string[]).map((f) => path.relative(ROOT, f))
  assert.deepEqual(loaded.sort(), [
    'dist/src/cli/fast.js',
    'dist/src/cli/main.js',
    'dist/src/cli/version.js',
    'package.json',
  ])
})
