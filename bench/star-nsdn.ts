/**
 * The star benchmark built with nsdn's library: N named namespaces bmh1..bmhN, each with lo up
 * and eth0 (10.77.x.y/16) up, eth0's veth peer bmvI a port of bridge bmbr0 in the root.
 * Same topology, timing points and checks as the other methods' scripts in bench/star/.
 *
 * Usage: node dist/bench/star-nsdn.js N [RUN]
 * Outside a sandbox it re-runs itself in one (src/sandbox.ts). Prints one line:
 * RESULT method=nsdn n=N run=RUN create_s=.. verify=ok|FAIL verify_s=.. struct=ok|FAIL(..)
 *        teardown_cmd_s=.. teardown_s=.. errors=E
 * @module
 */
import { spawnSync } from 'node:child_process'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { addrAdd } from '../src/netlink/addr.js'
import {
  type Link,
  linkAddBridge,
  linkAddVeth,
  linkByName,
  linkDel,
  linkList,
  linkSetUp,
  tryLinkByName,
} from '../src/netlink/link.js'
import { Rtnl } from '../src/netlink/rtnl.js'
import { NetNs } from '../src/netns/netns.js'
import { inSandbox, runSandboxed } from '../src/sandbox.js'
import { hostAddr } from './format.js'

const BRIDGE = 'bmbr0'
/** Requests (or hosts) in flight at once: bounds the ACKs queued on one socket. */
const WINDOW = 64
/** A fresh namespace has only lo, and the kernel always gives lo index 1. */
const LO = { index: 1, name: 'lo' }

const hostName = (i: number): string => `bmh${i}`

/** Progress on stderr: after a timeout, the driver shows the last line, i.e. where it stuck. */
const step = (what: string): void => {
  process.stderr.write(`star-nsdn: ${what}\n`)
}

/**
 * Keeps at most `size` tasks in flight (bounding the ACKs queued on one socket) and lets the
 * kernel's replies in between the synchronous steps of the caller. The first failure is kept.
 */
class Window {
  private readonly inflight = new Set<Promise<void>>()
  private error: unknown

  constructor(private readonly size: number) {}

  async add(task: Promise<unknown>): Promise<void> {
    const p: Promise<void> = task.then(
      () => undefined,
      (e: unknown) => {
        this.error ??= e
      },
    )
    this.inflight.add(p)
    void p.finally(() => this.inflight.delete(p))
    if (this.inflight.size >= this.size) await Promise.race(this.inflight)
    else await new Promise((r) => setImmediate(r))
  }

  async drain(): Promise<void> {
    await Promise.all(this.inflight)
    if (this.error !== undefined) throw this.error
  }
}

/** In a host's namespace: lo up, eth0's address, eth0 up. */
function configureHost(h: Rtnl, i: number, eth0: Pick<Link, 'index' | 'name'>): Promise<unknown> {
  return Promise.all([linkSetUp(h, LO), addrAdd(h, `${hostAddr(i)}/16`, eth0), linkSetUp(h, eth0)])
}

/**
 * Build the star in the order of the ip-batch method: first, from the root namespace, every
 * namespace and veth pair (peer created in the namespace, local end enslaved and up, one
 * request); then the configuration inside each namespace. Namespace creation is synchronous
 * (unshare + bind mount), and the kernel answers one host's requests while the next namespace
 * is made. eth0 is looked up in host 1 only: a fresh namespace holds lo (index 1) alone, so the
 * peer created in it gets the same index in every host (the structure check would catch a host
 * where it did not).
 */
async function create(n: number): Promise<void> {
  const root = Rtnl.for()
  await linkAddBridge(root, BRIDGE, { up: true })
  const br = await linkByName(root, BRIDGE)
  const window = new Window(WINDOW)
  const hosts: Rtnl[] = []
  const nss: NetNs[] = []
  try {
    for (let i = 1; i <= n; i++) {
      const ns = NetNs.create(hostName(i))
      nss.push(ns)
      hosts.push(Rtnl.for(ns))
      await window.add(linkAddVeth(root, `bmv${i}`, 'eth0', { peerNs: ns, master: br, up: true }))
    }
    await window.drain()
  } finally {
    // The sockets pin their namespaces now; an fd left open would keep one alive after delete.
    for (const ns of nss) ns.close()
  }
  step('namespaces and veth pairs made; configuring the hosts')
  const eth0 = await linkByName(hosts[0]!, 'eth0')
  for (let i = 1; i <= n; i++) await window.add(configureHost(hosts[i - 1]!, i, eth0))
  await window.drain()
}

/**
 * Close nsdn's sockets (an open socket would keep its namespace, and the veth in it, alive),
 * delete the bridge, then every namespace, and wait until no veth is left. The order of the
 * other methods; at N=1000 it beat deleting the namespaces first by 10-20 %.
 */
async function teardown(n: number): Promise<number> {
  const t = performance.now()
  Rtnl.closeAll()
  const root = Rtnl.for()
  await linkDel(root, BRIDGE)
  for (let i = 1; i <= n; i++) NetNs.delete(hostName(i))
  const cmdS = (performance.now() - t) / 1000
  // The kernel destroys namespaces asynchronously, the last deleted last: wait for its veth with
  // a cheap lookup, then confirm with the full list (a dump of every link is costly at large N).
  const deadline = Date.now() + 120_000
  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
  step('deleted; waiting for the kernel to remove the veths')
  const late = (): boolean => Date.now() > deadline
  while (!late() && (await tryLinkByName(root, `bmv${n}`))) await sleep(1)
  while ((await linkList(root)).some((l) => l.kind === 'veth')) {
    if (late()) throw new Error('veths still present after 120 s')
    await sleep(2)
  }
  return cmdS
}

/** The checks every method shares (bench/star/lib.sh): `ok SECONDS` / `ok` or a failure. */
function check(...args: string[]): string {
  const lib = path.resolve(__dirname, '../../bench/star/lib.sh')
  return spawnSync('bash', [lib, ...args], { encoding: 'utf8' }).stdout.trim()
}

async function main(): Promise<void> {
  const n = Number(process.argv[2])
  const run = process.argv[3] ?? '1'
  if (!Number.isInteger(n) || n < 1 || n > 40_000) {
    process.stderr.write('usage: star-nsdn N [RUN]   (1 <= N <= 40000)\n')
    process.exit(64)
  }
  let errs = 0
  const fail = (what: string, e: unknown): void => {
    errs++
    process.stderr.write(`${what} error: ${e instanceof Error ? e.message : String(e)}\n`)
  }
  const t0 = performance.now()
  step(`creating ${n} hosts`)
  await create(n).catch((e: unknown) => fail('create', e))
  const createS = (performance.now() - t0) / 1000
  step('created; verifying')
  const [verified, verifyS] = check('verify', String(n)).split(' ')
  const st = check('check_struct', String(n))
  step('verified; tearing down')
  const t2 = performance.now()
  const cmdS = await teardown(n).catch((e: unknown) => (fail('teardown', e), NaN))
  const teardownS = (performance.now() - t2) / 1000
  Rtnl.closeAll()
  const f = (x: number): string => x.toFixed(4)
  process.stdout.write(
    `RESULT method=nsdn n=${n} run=${run} create_s=${f(createS)} verify=${verified} ` +
      `verify_s=${verifyS} struct=${st} teardown_cmd_s=${f(cmdS)} teardown_s=${f(teardownS)} ` +
      `errors=${errs}\n`,
  )
}

// Outside a sandbox (run by hand) it re-runs itself in one: the benchmark never builds its star
// on the host.
if (!inSandbox()) {
  process.exit(runSandboxed([process.execPath, ...process.execArgv, ...process.argv.slice(1)]))
} else {
  main().catch((e: unknown) => {
    process.stderr.write(`star-nsdn: ${e instanceof Error ? e.stack : String(e)}\n`)
    process.exit(1)
  })
}
