/**
 * A private Open vSwitch for one root test file, and ovs-vsctl run by the test itself (its JSON
 * decoded here), so checks do not go through nsdn's own OVS reads.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { after, before } from 'node:test'
import { Rtnl } from '../../src/netlink/rtnl.js'
import { ovsStart, ovsStop } from '../../src/ovs/daemon.js'
import { eventually, netnsNames, strayLinks } from './kernel.js'

// The private instance's database until usePrivateOvs learns it from ovsStart.
let db = 'unix:/run/nsdn/ovs/db.sock'

/** Start the private OVS before the file's tests; after them stop it and assert nothing is left. */
export function usePrivateOvs(): void {
  before(async () => {
    db = (await ovsStart()).db
  })
  after(async () => {
    Rtnl.closeAll()
    await ovsStop()
    assert.ok(await eventually(() => strayLinks().length === 0), `links left: ${strayLinks()}`)
    assert.deepEqual(netnsNames(), [])
  })
}

export function vsctl(...args: string[]): string {
  return execFileSync('ovs-vsctl', [`--db=${db}`, '--timeout=5', ...args], { encoding: 'utf8' })
}

/** Rows of an OVSDB table as ovs-vsctl prints them in JSON. */
export function rows(table: string): Record<string, unknown>[] {
  const t = JSON.parse(vsctl('--format=json', 'list', table)) as {
    headings: string[]
    data: unknown[][]
  }
  return t.data.map((r) => Object.fromEntries(t.headings.map((h, i) => [h, r[i]])))
}

/** An OVSDB set column as a list: `["set",[...]]` or one bare atom. */
export const set = (v: unknown): unknown[] =>
  Array.isArray(v) && v[0] === 'set' ? (v[1] as unknown[]) : [v]
