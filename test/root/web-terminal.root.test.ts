/**
 * The web terminal of a container node: the container's own shell on a new pty of the
 * container (nsdn-init exec -t, with the size and resize messages of the web page), in every
 * namespace of the container; nothing left after.
 */
import { sandboxThisFile } from '../helpers/sandbox.js'
sandboxThisFile()

import assert from 'node:assert/strict'
import fs from 'node:fs'
import { after, before, test } from 'node:test'
import { Rtnl } from '../../src/netlink/rtnl.js'
import * as rt from '../../src/runtime/index.js'
import { openTerminal } from '../../src/web/terminal.js'
import { eventually } from '../helpers/kernel.js'
import { busyboxRoot, leftovers, runtimeTestFile } from '../helpers/runtime.js'

runtimeTestFile()
const SLEEP = ['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 1; done']

before(() => {
  rt.importImage('bbt', busyboxRoot())
})

after(() => {
  Rtnl.closeAll()
  rt.removeImage('bbt')
})

test("a container's terminal: its shell on its own pty, sized and resized by the page", async () => {
  const s = await rt.run({ name: 'term', image: 'bbt', command: SLEEP })
  const t = openTerminal({ container: 'term' }, { cols: 90, rows: 20 })
  let out = ''
  t.onData((d) => (out += d.toString()))
  const code = new Promise<number | null>((r) => t.onExit(r))
  t.write('tty; stty size; readlink /proc/self/ns/net; readlink /proc/self/ns/mnt\n')
  assert.ok(await eventually(() => /^20 90\r?$/m.test(out), 15_000), out)
  t.resize(132, 43)
  t.write('stty size; exit 4\n')
  assert.equal(await code, 4, out)
  assert.match(out, /^\/dev\/pts\/\d+\r?$/m, 'a pty of the container')
  assert.match(out, /^43 132\r?$/m, 'resized')
  for (const k of ['net', 'mnt']) {
    const ns = fs.readlinkSync(`/proc/${s.pid}/ns/${k}`)
    assert.ok(out.includes(ns), `the container's ${k} namespace ${ns}`)
  }
  await rt.remove('term', { force: true })
  assert.deepEqual(leftovers(), [])
})

test('a terminal of a container that does not run is refused', () => {
  assert.throws(() => openTerminal({ container: 'nope' }, { cols: 80, rows: 24 }), {
    code: 'E_NOT_FOUND',
  })
})
