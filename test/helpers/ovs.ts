/**
 * A private Open vSwitch for one root test file, and ovs-vsctl run by the test itself (its JSON
 * decoded here), so checks do not go through nsdn's own OVS reads.
 */
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import { after, afterEach, before } from 'node:test'
import { Rtnl } from '../../src/netlink/rtnl.js'
import { ovsStart, ovsStop } from '../../src/ovs/daemon.js'
import { eventually, ipJson, netnsNames, strayLinks } from './kernel.js'

// The private instance's database until usePrivateOvs learns it from ovsStart.
let db = 'unix:/run/nsdn/ovs/db.sock'

/**
 * Start the private OVS before the file's tests; after them stop it and assert nothing is left.
 * After each test, remove what a test that failed half-way left behind (see {@link sweep}), so
 * that one failure stays one failure instead of failing every test after it.
 */
export function usePrivateOvs(dataDir: string): void {
  before(async () => {
    db = (await ovsStart()).db
  })
  afterEach(() => sweep(dataDir))
  after(async () => {
    Rtnl.closeAll()
    await ovsStop()
    assert.ok(await eventually(() => strayLinks().length === 0), `links left: ${strayLinks()}`)
    assert.deepEqual(netnsNames(), [])
  })
}

/**
 * Every OVS bridge (its ports go with it), every named namespace, every veth in the sandbox
 * root, and the IPAM leases under dataDir. nsdn's sockets are closed first: an open one would
 * keep a deleted namespace, and its veths, alive.
 */
export function sweep(dataDir: string): void {
  Rtnl.closeAll()
  for (const br of rows('Bridge')) vsctl('--if-exists', 'del-br', String(br.name))
  // Deleting one end of a veth deletes its peer: the second delete may find nothing.
  const del = (...args: string[]): unknown => spawnSync('ip', args, { stdio: 'ignore' })
  for (const ns of netnsNames()) del('netns', 'del', ns)
  for (const l of ipJson<{ ifname: string }[]>(['link', 'show', 'type', 'veth']))
    del('link', 'del', l.ifname)
  if (fs.existsSync(dataDir))
    for (const f of fs.readdirSync(dataDir)) fs.rmSync(`${dataDir}/${f}`, { recursive: true })
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
