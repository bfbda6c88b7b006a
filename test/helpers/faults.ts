/**
 * The fault and bad-input harness of the root tests (they run nsdn with ./cli.ts): count the
 * inputs tried, faults injected and leaks found, and look for leaks with independent views
 * (ip -j, the lease and result directories, ovs-vsctl).
 */
import fs from 'node:fs'
import path from 'node:path'
import { ipLinks, netnsNames, strayLinks } from './kernel.js'

/** The counts the harness reports. */
export const counts = { inputs: 0, faults: 0, leaks: 0 }

/** Every file under dir (relative), [] when there is no dir. */
export function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return []
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => !e.isDirectory())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort()
}

export interface LeakView {
  /** Links the test keeps on purpose (a bridge that outlives its ports). */
  keepLinks?: string[]
  keepNetns?: string[]
  /** Lease data directories whose networks must hold nothing (no file, no directory). */
  dataDirs?: string[]
  /** Extra checks: each returns what it found left. */
  extra?: (() => string[])[]
}

/** What is left that should not be: each leak one line. Counted in `counts.leaks`. */
export function leaks(v: LeakView = {}): string[] {
  const out = [
    ...strayLinks()
      .filter((l) => !(v.keepLinks ?? []).includes(l))
      .map((l) => `link ${l}`),
    ...netnsNames()
      .filter((n) => !(v.keepNetns ?? []).includes(n))
      .map((n) => `netns ${n}`),
    ...filesUnder(process.env.NSDN_RESULT_DIR ?? '/run/nsdn/results').map((f) => `result ${f}`),
    ...(v.dataDirs ?? []).flatMap((d) =>
      fs.existsSync(d) ? fs.readdirSync(d).map((n) => `lease dir ${path.join(d, n)}`) : [],
    ),
    ...(v.extra ?? []).flatMap((f) => f()),
  ]
  counts.leaks += out.length
  return out
}

/** The operstate flags of lo in a namespace: whether it is up. */
export function loUp(ns: string): boolean {
  return ipLinks(ns).some((l) => l.ifname === 'lo' && l.flags.includes('UP'))
}
