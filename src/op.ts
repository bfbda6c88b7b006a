/**
 * Every operation nsdn performs on the kernel or on Open vSwitch is an Op value that passes one
 * choke point, {@link runOp}: it is logged at debug, printed as the command it stands for under
 * --explain, and skipped under --dry-run. `ns` is the iproute2 name of the namespace the op runs
 * in (undefined = the namespace nsdn itself runs in).
 * @module
 */
import { logger } from './log.js'
import { explainLines } from './teach/commands.js'

export type LinkType = 'bridge' | 'veth' | 'macvlan' | 'vxlan' | 'vlan'

export interface VxlanOpts {
  id: number
  remote?: string
  local?: string
  group?: string
  dev?: string
  dstport?: number
}

export interface AddrFields {
  ns?: string
  cidr: string
  dev: string
  /** IFA_F_NODAD: no duplicate address detection (IPv6 usable at once). */
  nodad?: boolean
}

export interface RouteFields {
  ns?: string
  /** A prefix, or "default". */
  dst: string
  via?: string
  dev?: string
  src?: string
  metric?: number
  table?: number
  scope?: 'link' | 'host'
  /** The route's family: printed (`ip -6`) where dst and via do not imply it. */
  family?: 4 | 6
}

export interface ShowFields {
  ns?: string
  dev?: string
}

export interface MountFields {
  source?: string
  target: string
  fstype?: string
  /** MS_* flags (src/ffi/libc.ts MS). */
  flags: number
  data?: string
}

export type Op =
  | { kind: 'netns.add'; name: string }
  | { kind: 'netns.del'; name: string }
  /** Name the network namespace of a running process (a container's). */
  | { kind: 'netns.attach'; name: string; pid: number }
  | {
      kind: 'link.add'
      ns?: string
      name: string
      type: 'bridge'
      master?: string
      up?: boolean
      vlanFiltering?: boolean
      /** false: `mcast_snooping 0`. */
      mcastSnooping?: boolean
      /** The device group (`group N`). */
      group?: number
    }
  | {
      kind: 'link.add.veth'
      ns?: string
      name: string
      peer: string
      peerNs?: string
      master?: string
      up?: boolean
      /** Queues of each end (numtxqueues, numrxqueues); the kernel's default is one per CPU. */
      queues?: number
      /** The local end's device group (`group N`). */
      group?: number
    }
  | { kind: 'link.add.macvlan'; ns?: string; name: string; parent: string; mode: string }
  | { kind: 'link.add.vxlan'; ns?: string; name: string; vxlan: VxlanOpts }
  | { kind: 'link.add.vlan'; ns?: string; name: string; parent: string; id: number }
  | { kind: 'link.del'; ns?: string; name: string }
  /** Every device of a group, in one request. */
  | { kind: 'link.del.group'; ns?: string; group: number }
  | {
      kind: 'link.set'
      ns?: string
      name: string
      up?: boolean
      mtu?: number
      address?: string
      master?: string | null
      netns?: string
      newName?: string
      /** `none`: no IPv6 link-local address at the next up. */
      addrgenmode?: 'none' | 'eui64'
    }
  | { kind: 'link.set.bridge_slave'; ns?: string; name: string; hairpin?: boolean }
  | { kind: 'link.set.promisc'; ns?: string; name: string; on: boolean }
  | ({ kind: 'addr.add' } & AddrFields)
  | ({ kind: 'addr.replace' } & AddrFields)
  | ({ kind: 'addr.del' } & AddrFields)
  | ({ kind: 'route.add' } & RouteFields)
  | ({ kind: 'route.replace' } & RouteFields)
  | ({ kind: 'route.del' } & RouteFields)
  | { kind: 'sysctl.set'; ns?: string; key: string; value: string }
  | { kind: 'ethtool.features'; ns?: string; dev: string; features: Record<string, boolean> }
  | {
      kind: 'bridge.vlan.add'
      ns?: string
      dev: string
      vid: number
      pvid?: boolean
      untagged?: boolean
    }
  | ({ kind: 'link.show' } & ShowFields)
  | ({ kind: 'addr.show' } & ShowFields)
  | ({ kind: 'route.show' } & ShowFields)
  | ({ kind: 'neigh.show' } & ShowFields)
  | { kind: 'ovs.vsctl'; argv: string[] }
  /** Start or stop the private ovsdb-server + ovs-vswitchd in runDir. */
  | { kind: 'ovs.daemon'; action: 'start' | 'stop'; runDir: string }
  /** An nft call (argv, never a shell line); `nft.show` only reads, so it runs under --dry-run. */
  | { kind: 'nft'; argv: string[]; ns?: string; stdin?: string }
  /** An nft script on nft's stdin (one transaction), printed as an `nft -f -` heredoc. */
  | { kind: 'nft.script'; script: string }
  /** Run a program in a named netns (`ip netns exec`). */
  | { kind: 'netns.exec'; name: string; argv: string[] }
  /** Run a program in a fresh sandbox (src/sandbox.ts). */
  | { kind: 'sandbox'; argv: string[] }
  /** A token bucket on DEV's egress: rate in bit/s, burst in bytes, latency in ms. */
  | { kind: 'tc.qdisc.tbf'; ns?: string; dev: string; rate: number; burst: number; latency: number }
  /** Remove DEV's root qdisc (its rate limit): the device is back to its default queue. */
  | { kind: 'tc.qdisc.del'; ns?: string; dev: string }
  | { kind: 'tc.qdisc.show'; ns?: string }
  | { kind: 'nft.show'; argv: string[] }
  /** An ovs-vsctl call that only reads (list, find, list-br): runs under --dry-run. */
  | { kind: 'ovs.vsctl.show'; argv: string[] }
  /** Runtime steps (src/runtime/): cgroup files, mounts, namespaces, the container's processes. */
  | { kind: 'fs.write'; path: string; value: string }
  | { kind: 'fs.mkdir'; path: string }
  /** `ifUnused`: a shared parent, removed only when nothing else is in it (else left alone). */
  | { kind: 'fs.rmdir'; path: string; ifUnused?: boolean }
  | { kind: 'fs.touch'; path: string }
  | { kind: 'fs.symlink'; target: string; path: string }
  | { kind: 'kill'; pid: number; signal: string }
  | ({ kind: 'mount' } & MountFields)
  | { kind: 'umount'; target: string; lazy?: boolean }
  | { kind: 'pivot_root'; root: string }
  /**
   * A container's processes, printed as one shell block: a shell joins the cgroups (`procs`),
   * unshare makes the namespaces (`ns`, unshare's names; the net one bound to `netnsFile`,
   * users mapped by `uidMap`/`gidMap` as "INNER OUTER COUNT"), and its PID 1 runs `steps`
   * (mounts, pivot_root, hostname, then the payload's exec in `cwd`). `log`: detached, output
   * there.
   */
  | {
      kind: 'container'
      procs: string[]
      ns: string[]
      netnsFile?: string
      uidMap?: string
      gidMap?: string
      steps: Op[]
      /** The payload's working directory, when not /. */
      cwd?: string
      log?: string
    }
  | { kind: 'sethostname'; name: string }
  | { kind: 'exec'; argv: string[] }
  | { kind: 'copy'; from: string; to: string }
  | { kind: 'untar'; file: string; to: string }
  | { kind: 'rm'; path: string }
  /** A container of nsdn's runtime (a lab's container node), made and started as one step. */
  | {
      kind: 'container.run'
      name: string
      image: string
      hostname: string
      command: string[]
      /** KEY=VALUE */
      env: string[]
      /** The runtime's limits model, as written (memory: 64M, cpus: 0.5, pids: 100, ...). */
      limits: Record<string, string | number>
    }
  /** Remove a container with force: its processes, cgroup, netns, overlay and state. */
  | { kind: 'container.rm'; name: string }

export type OpKind = Op['kind']

/** What the choke point does besides running the op: set once by the CLI (or NSDN_* env). */
export const opMode = {
  explain: process.env.NSDN_EXPLAIN === '1',
  dryRun: process.env.NSDN_DRY_RUN === '1',
  /** Where --explain lines go: stderr, since stdout carries results and the CNI protocol. */
  write: (line: string): void => {
    process.stderr.write(line + '\n')
  },
}

const log = logger('op')

/** Reads change nothing: they run under --dry-run and stay out of --explain (noise to learners). */
const isRead = (op: Op): boolean => op.kind.endsWith('.show')

/** Print `# why` above the next steps under --explain: a learner reads why, not only what. */
export function explainWhy(why: string): void {
  if (opMode.explain || opMode.dryRun) opMode.write(`# ${why}`)
}

const explain = (op: Op): void => {
  for (const line of explainLines(op)) opMode.write(line)
}

/**
 * Run `fn` with --explain printing off: its ops are parts of one already printed whole (a
 * container's shell block). `fn` is synchronous, so no other op can run meanwhile.
 */
export function explainedAbove<T>(fn: () => T): T {
  const was = opMode.explain
  opMode.explain = false
  try {
    return fn()
  } finally {
    opMode.explain = was
  }
}

/**
 * Run `fn`, the real work behind `op`. Under --dry-run `fn` is skipped and `dryValue` returned.
 */
export async function runOp<T>(op: Op, fn: () => Promise<T>, dryValue: T): Promise<T> {
  log.debug({ op }, 'op')
  if (isRead(op)) return fn()
  if (opMode.explain || opMode.dryRun) explain(op)
  if (opMode.dryRun) return dryValue
  return fn()
}

/** Synchronous form for ops done with synchronous syscalls (netns add/del, sysctl). */
export function runOpSync<T>(op: Op, fn: () => T, dryValue: T): T {
  log.debug({ op }, 'op')
  if (isRead(op)) return fn()
  if (opMode.explain || opMode.dryRun) explain(op)
  if (opMode.dryRun) return dryValue
  return fn()
}
