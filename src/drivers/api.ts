/**
 * The network driver interface. A driver is one object (parseConf, add, del, check) in
 * plugins/<name>/; the lab engine and `nsdn net` call it in-process, and the CNI skel wraps the
 * same object into a CNI plugin. Driver name = plugin folder = CNI "type".
 * Results use the CNI 1.x Result shape (interfaces, ips, routes, dns).
 * @module
 */
import type { NetNs } from '../netns/netns.js'

export interface CniInterface {
  name: string
  mac?: string
  mtu?: number
  /** The netns path, for interfaces inside the container; absent for host-side ones. */
  sandbox?: string
}

export interface CniIpConfig {
  /** CIDR: 10.1.0.10/24 */
  address: string
  gateway?: string
  /** Index into `interfaces`. */
  interface?: number
}

export interface CniRoute {
  dst: string
  gw?: string
  mtu?: number
  priority?: number
  table?: number
  scope?: number
}

export interface CniDns {
  nameservers?: string[]
  domain?: string
  search?: string[]
  options?: string[]
}

export interface CniResult {
  cniVersion?: string
  interfaces?: CniInterface[]
  ips?: CniIpConfig[]
  routes?: CniRoute[]
  dns?: CniDns
}

/** Fields every network config has (the CNI network configuration). */
export interface NetConfBase {
  cniVersion?: string
  name: string
  type: string
}

/** What an attachment is about: which container, which namespace, which interface. */
export interface AttachContext {
  /** CNI_CONTAINERID, or the netns name for `nsdn net attach`. */
  containerId: string
  /** The container's network namespace. For del it may be undefined (already gone). */
  netns: NetNs | undefined
  /** Its path, reported as `sandbox` in results. */
  netnsPath: string
  /** Interface name inside the container (CNI_IFNAME). */
  ifname: string
  /** Result of the previous plugin in a chain, or the recorded result (check). */
  prevResult?: CniResult
}

export interface NetworkDriver<C extends NetConfBase = NetConfBase> {
  readonly name: string
  /** Validate a config; throws ConfigError with a field path. `where` prefixes the path. */
  parseConf(raw: unknown, where?: string): C
  /** Create the attachment. Atomic: on any failure it undoes what it created. */
  add(conf: C, ctx: AttachContext): Promise<CniResult>
  /** Remove it. Succeeds when all or part of it is gone already, and when called twice. */
  del(conf: C, ctx: AttachContext): Promise<void>
  /** Throws an error that says precisely what differs from `ctx.prevResult`. */
  check(conf: C, ctx: AttachContext): Promise<void>
}
