/**
 * Per-namespace sysctls (net.ipv4.ip_forward, proxy_arp, ...). /proc/sys/net shows the
 * namespace of the thread that opens it, so the write happens inside a netns window.
 * @module
 */
import fs from 'node:fs'
import { ConfigError } from './errors.js'
import { type NetNs, runInNetnsSync } from './netns/netns.js'
import { runOpSync } from './op.js'

const path = (key: string): string => {
  if (!/^[a-z0-9_]+(\.[A-Za-z0-9_-]+)+$/.test(key) || key.includes('..'))
    throw new ConfigError(`invalid sysctl key "${key}"`, 'sysctl')
  return '/proc/sys/' + key.replace(/\./g, '/')
}

/** Equivalent: `[ip netns exec NS] sysctl -w KEY=VALUE`. */
export function sysctlSet(ns: NetNs, key: string, value: string): void {
  const file = path(key)
  runOpSync(
    { kind: 'sysctl.set', ...(ns.name ? { ns: ns.name } : {}), key, value },
    () => runInNetnsSync(ns, () => fs.writeFileSync(file, value)),
    undefined,
  )
}

export function sysctlGet(ns: NetNs, key: string): string {
  const file = path(key)
  return runInNetnsSync(ns, () => fs.readFileSync(file, 'utf8').trim())
}
