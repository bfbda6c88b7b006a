/**
 * What the lab's root tests share: lab files written into a directory of the test file's own,
 * and the check that nothing of a lab is left on the (sandboxed) host.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after } from 'node:test'
import { labsDir } from '../../src/lab/state.js'
import { eventually, netnsNames, strayLinks } from './kernel.js'
import { leftovers } from './runtime.js'

/** `write` puts a lab file into a directory of this test file's own, removed after its tests. */
export function labFiles(): { write(name: string, text: string): string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsdn-lab-'))
  after(() => fs.rmSync(dir, { recursive: true, force: true }))
  return {
    write(name, text) {
      const f = path.join(dir, name)
      fs.writeFileSync(f, text)
      return f
    },
  }
}

/**
 * Nothing of a lab remains: no link (but `keepLinks`, devices the test made itself), namespace,
 * lab state or private OVS; with `containers`, no container state, cgroup or mount either.
 */
export async function assertNoLab(
  what: string,
  o: { keepLinks?: string[]; containers?: boolean } = {},
): Promise<void> {
  const stray = (): string[] => strayLinks().filter((l) => !(o.keepLinks ?? []).includes(l))
  assert.ok(await eventually(() => stray().length === 0), `${what}: links left: ${stray()}`)
  assert.deepEqual(netnsNames(), [], `${what}: namespaces left`)
  const labs = fs.existsSync(labsDir()) ? fs.readdirSync(labsDir()) : []
  assert.deepEqual(labs, [], `${what}: lab state left`)
  assert.equal(fs.existsSync('/run/nsdn/ovs/db.sock'), false, `${what}: OVS still running`)
  if (o.containers)
    assert.deepEqual(leftovers(), [], `${what}: container state, cgroups or mounts left`)
}
