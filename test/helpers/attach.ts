/**
 * Helpers for the driver root tests: container namespaces with an AttachContext, IPAM lease
 * files, nsdn's nft rules, addresses and routes, and iperf3 between two namespaces.
 */
import assert from 'node:assert/strict'
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import type { AttachContext, CniResult } from '../../src/drivers/api.js'
import { NetNs } from '../../src/netns/netns.js'
import { ipJson } from './kernel.js'

/** A fresh named netns and the context that attaches its eth0. */
export function container(name: string, ifname = 'eth0'): AttachContext & { netns: NetNs } {
  const netns = NetNs.create(name)
  return { containerId: name, netns, netnsPath: `/run/netns/${name}`, ifname }
}

/** Delete the namespace of a container context. */
export function dropContainer(ctx: AttachContext): void {
  ctx.netns?.close()
  if (NetNs.exists(ctx.containerId)) NetNs.delete(ctx.containerId)
}

/** A data directory for host-local leases, on the sandbox's private /run. */
export function ipamDataDir(): string {
  return fs.mkdtempSync('/run/nsdn-t-ipam-')
}

/** Lease files of a network (one per address), without the lock and round-robin files. */
export function leases(dataDir: string, network: string): string[] {
  try {
    return fs
      .readdirSync(path.join(dataDir, network))
      .filter((f) => f !== 'lock' && !f.startsWith('last_reserved_ip'))
      .sort()
  } catch {
    return []
  }
}

/** Comments of every nft rule of nsdn's (tagged "nsdn:..."), read with `nft -j`. */
export function nsdnNftRules(): string[] {
  const r = spawnSync('nft', ['-j', 'list', 'ruleset'], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`nft list ruleset: ${r.stderr}`)
  const items = (JSON.parse(r.stdout) as { nftables: { rule?: { comment?: string } }[] }).nftables
  return items.flatMap((i) => (i.rule?.comment?.startsWith('nsdn:') ? [i.rule.comment] : []))
}

/** `ip [-n NS] ARGS...`, for a test's own setup; throws on failure. */
export function ip(args: string[], ns?: string): void {
  execFileSync('ip', [...(ns ? ['-n', ns] : []), ...args])
}

/** The first IPv4 (or IPv6) address of a CNI Result, without its prefix length. */
export function addressOf(r: CniResult, family: 4 | 6 = 4): string {
  const a = r.ips?.find((x) => x.address.includes(':') === (family === 6))?.address
  assert.ok(a, `no IPv${family} address in ${JSON.stringify(r)}`)
  return a.split('/')[0] ?? ''
}

/** Each case's fields, added to a valid config, make `conf` throw E_CONFIG matching its pattern. */
export function assertConfErrors(
  conf: (extra: Record<string, unknown>) => unknown,
  cases: [Record<string, unknown>, RegExp][],
): void {
  for (const [extra, re] of cases)
    assert.throws(
      () => conf(extra),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'E_CONFIG', `${JSON.stringify(extra)}: ${err.message}`)
        assert.match(err.message, re, JSON.stringify(extra))
        return true
      },
    )
}

/** `ip -j addr` of one device in a namespace: its addresses with their flags. */
export function addrInfo(
  dev: string,
  ns?: string,
): {
  local: string
  prefixlen: number
  family: string
  tentative?: boolean
  dadfailed?: boolean
}[] {
  const [l] = ipJson<{ addr_info: never[] }[]>(['addr', 'show', 'dev', dev], ns)
  return l?.addr_info ?? []
}

/** Routes of a namespace as `ip -j route` prints them. */
export function ipRoutes(
  ns?: string,
  family: 4 | 6 = 4,
): { dst: string; gateway?: string; dev?: string }[] {
  return ipJson([`-${family}`, 'route', 'show'], ns)
}

export interface IperfResult {
  bytes: number
  bitsPerSecond: number
}

/** iperf3 for one second from namespace `client` to a one-shot server in `server` at `ip`. */
export async function iperf(server: string, ip: string, client: string): Promise<IperfResult> {
  // --forceflush: "Server listening" reaches the pipe at once, not when the server exits.
  const argv = ['netns', 'exec', server, 'iperf3', '-s', '-1', '--forceflush', '-B', ip]
  const srv = spawn('ip', argv, {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const exited = new Promise((resolve) => srv.on('exit', resolve))
  try {
    await new Promise<void>((resolve, reject) => {
      let out = ''
      const timer = setTimeout(() => reject(new Error(`iperf3 server did not start: ${out}`)), 5000)
      srv.stdout.on('data', (b: Buffer) => {
        out += b.toString()
        if (out.includes('Server listening')) {
          clearTimeout(timer)
          resolve()
        }
      })
    })
    const r = spawnSync('ip', ['netns', 'exec', client, 'iperf3', '-c', ip, '-t', '1', '-J'], {
      encoding: 'utf8',
      timeout: 20_000,
    })
    const j = JSON.parse(r.stdout) as {
      error?: string
      end: { sum_received: { bytes: number; bits_per_second: number } }
    }
    if (j.error) throw new Error(`iperf3: ${j.error}`)
    return { bytes: j.end.sum_received.bytes, bitsPerSecond: j.end.sum_received.bits_per_second }
  } finally {
    if (srv.exitCode === null) srv.kill()
    await exited
  }
}
