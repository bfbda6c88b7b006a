/**
 * Independent views of the kernel's state for root tests: iproute2's JSON output and ping.
 * Tests check what nsdn did with these, never with nsdn's own reads alone.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'

/** `ip [-n NS] -j ARGS...` parsed. */
export function ipJson<T = Record<string, unknown>[]>(args: string[], ns?: string): T {
  const argv = [...(ns ? ['-n', ns] : []), '-j', ...args]
  const out = execFileSync('ip', argv, { encoding: 'utf8' })
  return (out.trim() ? JSON.parse(out) : []) as T
}

export interface IpLink {
  ifname: string
  ifindex: number
  flags: string[]
  mtu: number
  master?: string
  address?: string
  operstate?: string
  /** "default", or the group's number */
  group?: string
  linkinfo?: { info_kind?: string; info_data?: Record<string, unknown> }
}

export function ipLinks(ns?: string): IpLink[] {
  return ipJson<IpLink[]>(['-d', 'link', 'show'], ns)
}

export function ipAddrs(ns?: string): string[] {
  const links = ipJson<{ ifname: string; addr_info: { local: string; prefixlen: number }[] }[]>(
    ['addr', 'show'],
    ns,
  )
  return links.flatMap((l) => l.addr_info.map((a) => `${l.ifname} ${a.local}/${a.prefixlen}`))
}

/** One ping from inside ns (or from the sandbox root). true when answered. */
export function ping(target: string, ns?: string, count = 1): boolean {
  const argv = ['ping', '-n', '-q', '-c', String(count), '-W', '2', target]
  const r = ns
    ? spawnSync('ip', ['netns', 'exec', ns, ...argv], { stdio: 'ignore' })
    : spawnSync(argv[0]!, argv.slice(1), { stdio: 'ignore' })
  return r.status === 0
}

/** Ping that tolerates the first second of a fresh L2 domain (a port may not forward yet). */
export function pingSoon(target: string, ns?: string): boolean {
  for (let i = 0; i < 5; i++) if (ping(target, ns)) return true
  return false
}

export function netnsNames(): string[] {
  try {
    return fs.readdirSync('/run/netns').sort()
  } catch {
    return []
  }
}

/** Wait until fn() is true (the kernel destroys namespaces asynchronously). */
export async function eventually(fn: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (fn()) return true
    await new Promise((r) => setTimeout(r, 20))
  }
  return fn()
}

/** Links in the sandbox root other than lo: after cleanup there must be none of ours. */
export function strayLinks(): string[] {
  return ipLinks()
    .map((l) => l.ifname)
    .filter((n) => n !== 'lo')
}

/** A process as /proc shows it. */
export interface Proc {
  pid: number
  /** /proc/PID/stat: "PID (COMM) STATE PPID ..." */
  stat: string
  /** /proc/PID/cmdline, NUL-separated. */
  cmdline: string
  /** /proc/PID/ns/mnt: whose mount namespace (this test file's sandbox, or another). */
  mntNs: string
}

/** The running processes for which `keep` holds (those gone meanwhile are skipped). */
export function procs(keep: (p: Proc) => boolean): number[] {
  return fs.readdirSync('/proc').flatMap((d) => {
    if (!/^\d+$/.test(d)) return []
    try {
      const p: Proc = {
        pid: +d,
        stat: fs.readFileSync(`/proc/${d}/stat`, 'utf8'),
        cmdline: fs.readFileSync(`/proc/${d}/cmdline`, 'utf8'),
        mntNs: fs.readlinkSync(`/proc/${d}/ns/mnt`),
      }
      return keep(p) ? [p.pid] : []
    } catch {
      return [] // gone meanwhile
    }
  })
}
