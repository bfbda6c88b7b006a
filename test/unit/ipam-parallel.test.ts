import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { isIP } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { FileStore } from '../../src/ipam/store-file.js'

const FIXTURE = join(__dirname, '../fixtures/ipam-alloc.js')

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'nsdn-ipam-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

function start(args: string[]): ChildProcess {
  return spawn(process.execPath, [FIXTURE, ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
}

/** Run the fixture to its end; its stdout parsed as JSON. */
function run(args: string[]): Promise<{ ips?: { address: string }[]; error?: string }> {
  return new Promise((resolve, reject) => {
    const child = start(args)
    let out = ''
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()))
    child.on('error', reject)
    child.on('close', (code) =>
      code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`exit ${code}: ${out}`)),
    )
  })
}

/** Start a fixture that holds the store's lock; resolves once it holds it. */
function holdLock(dataDir: string, network: string, ms: number): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = start(['hold', dataDir, network, String(ms)])
    child.stdout?.once('data', () => resolve(child))
    child.on('error', reject)
    child.on('close', (code) => reject(new Error(`holder ended early: ${code}`)))
  })
}

test('50 processes allocate from one file store at once: 50 distinct addresses', async (t) => {
  const dataDir = tempDir(t)
  const t0 = Date.now()
  const ids = Array.from({ length: 50 }, (_, i) => `ctr${i}`)
  const results = await Promise.all(ids.map((id) => run(['add', dataDir, 'par', id])))
  t.diagnostic(`50 processes: ${Date.now() - t0} ms`)
  const byId = new Map(ids.map((id, i) => [id, results[i]?.ips?.[0]?.address ?? 'none']))
  const addrs = [...byId.values()]
  assert.equal(new Set(addrs).size, 50, addrs.join(' '))
  // Serialised, each allocation starts after the last reserved: exactly .2 to .51 (.1: gateway).
  const want = Array.from({ length: 50 }, (_, i) => `10.77.0.${i + 2}/24`)
  assert.deepEqual([...addrs].sort(), [...want].sort())
  const dir = join(dataDir, 'par')
  const leases = readdirSync(dir).filter((f) => isIP(f))
  assert.equal(leases.length, 50)
  for (const [id, address] of byId)
    assert.equal(readFileSync(join(dir, address.split('/')[0] as string), 'utf8'), `${id}\r\neth0`)
  const last = readFileSync(join(dir, 'last_reserved_ip.0'), 'utf8')
  assert.ok(leases.includes(last), last)
})

test('10 processes racing for one owner: exactly one gets an address', async (t) => {
  const dataDir = tempDir(t)
  const results = await Promise.all(
    Array.from({ length: 10 }, () => run(['add', dataDir, 'dup', 'same'])),
  )
  assert.equal(results.filter((r) => r.ips).length, 1, JSON.stringify(results))
  assert.deepEqual(
    results.filter((r) => r.error).map((r) => r.error),
    Array<string>(9).fill('E_EXISTS'),
  )
  assert.equal(readdirSync(join(dataDir, 'dup')).filter((f) => isIP(f)).length, 1)
})

test('the lock excludes other processes, and the event loop runs while waiting', async (t) => {
  const dataDir = tempDir(t)
  const holder = await holdLock(dataDir, 'lk', 400)
  const exited = new Promise((resolve) => holder.on('exit', resolve))
  const t0 = Date.now()
  let ticks = 0
  const timer = setInterval(() => ticks++, 10)
  const gotAt = await FileStore.open(dataDir, 'lk').withLock(() => Date.now())
  clearInterval(timer)
  assert.ok(gotAt - t0 >= 250, `got the lock after ${gotAt - t0} ms, while the holder had it`)
  assert.ok(ticks >= 10, `only ${ticks} timer ticks while waiting: the event loop was blocked`)
  assert.equal(await exited, 0)
})

test('a killed holder leaves no stale lock', async (t) => {
  const dataDir = tempDir(t)
  const holder = await holdLock(dataDir, 'lk', 60_000)
  let got = false
  const waiting = FileStore.open(dataDir, 'lk').withLock(() => (got = true))
  await new Promise((resolve) => setTimeout(resolve, 100))
  assert.equal(got, false, 'got the lock while the holder had it')
  const t0 = Date.now()
  holder.kill('SIGKILL')
  await waiting
  assert.ok(Date.now() - t0 < 2000)
})

test('callers in one process queue for the lock and all get it', async (t) => {
  const dataDir = tempDir(t)
  const store = FileStore.open(dataDir, 'q')
  const order: number[] = []
  await Promise.all(Array.from({ length: 20 }, (_, i) => store.withLock(() => order.push(i))))
  assert.deepEqual(
    order,
    Array.from({ length: 20 }, (_, i) => i),
  )
  await assert.rejects(
    store.withLock(() => {
      throw new Error('boom')
    }),
    /boom/,
  )
  assert.equal(await store.withLock(() => 'after a failure'), 'after a failure')
})

const REF = '/usr/lib/cni/host-local'

test(
  'the reference host-local plugin waits for our lock',
  {
    skip: !existsSync(REF) && `${REF} is not installed`,
  },
  async (t) => {
    const dataDir = tempDir(t)
    const holder = await holdLock(dataDir, 'net1', 500)
    const t0 = Date.now()
    const ref = spawn(REF, {
      env: {
        CNI_COMMAND: 'ADD',
        CNI_CONTAINERID: 'theirs',
        CNI_NETNS: '/nonexistent',
        CNI_IFNAME: 'eth0',
        CNI_PATH: '/usr/lib/cni',
      },
      stdio: ['pipe', 'ignore', 'inherit'],
    })
    ref.stdin?.end(
      JSON.stringify({
        cniVersion: '1.0.0',
        name: 'net1',
        ipam: { type: 'host-local', subnet: '10.1.0.0/24', dataDir },
      }),
    )
    const code = await new Promise((resolve) => ref.on('close', resolve))
    assert.equal(code, 0)
    assert.ok(Date.now() - t0 >= 300, `reference ADD took ${Date.now() - t0} ms under our lock`)
    assert.equal(readFileSync(join(dataDir, 'net1', '10.1.0.2'), 'utf8'), 'theirs\r\neth0')
    holder.kill()
  },
)
