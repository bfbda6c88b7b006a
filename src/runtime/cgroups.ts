/**
 * cgroups: one limits model, two backends chosen by probing /proc/self/mountinfo.
 * - v2 (`/sys/fs/cgroup` is cgroup2): memory.max, memory.swap.max, cpu.weight, cpu.max,
 *   cpuset.cpus/mems, pids.max, io.weight, cgroup.freeze, cgroup.kill.
 * - v1 (legacy or hybrid): one directory per controller hierarchy (memory.limit_in_bytes,
 *   cpu.shares, cpu.cfs_quota_us, cpuset.*, pids.max, blkio.weight, freezer.state). On a hybrid
 *   host the group also gets a directory in the v2 tree, which has no controllers but can list
 *   (cgroup.procs) and kill (cgroup.kill) the whole group.
 * Every directory is nsdn's parent (NSDN_CGROUP_PARENT, default "nsdn") / the container's name.
 * Each write passes the choke point, so --explain prints it as `echo VALUE > FILE`.
 * @module
 */
import fs from 'node:fs'
import path from 'node:path'
import { KernelFeatureError, NsdnError } from '../errors.js'
import { runOpSync } from '../op.js'

/** The limits of a container, in one model whatever the backend. */
export interface Limits {
  /** Bytes of memory. */
  memory?: number
  /** Bytes of memory plus swap (docker's --memory-swap); equal to memory: no swap. */
  memorySwap?: number
  /** Relative cpu weight, 1-10000 (v2's scale; v1 shares are converted). */
  cpuWeight?: number
  /** Cpu time per period, in cpus (0.5 = half a cpu). */
  cpus?: number
  cpusetCpus?: string
  cpusetMems?: string
  pids?: number
  /** Relative io weight, 1-10000. */
  ioWeight?: number
}

export interface CgroupStats {
  memory?: { usage: number; limit?: number; limitHits: number; oomKills: number }
  cpu?: { usageNs: number; periods: number; throttled: number; throttledNs: number }
  pids?: { current: number; limit?: number; limitHits: number }
}

export const CPU_PERIOD_US = 100_000

function parent(): string {
  return process.env.NSDN_CGROUP_PARENT ?? 'nsdn'
}

const parentParts = (): string[] => parent().split('/').filter(Boolean)

interface CgroupMount {
  type: 'cgroup' | 'cgroup2'
  dir: string
  controllers: string[]
}

/** The cgroup mounts of this mount namespace. */
export function cgroupMounts(): CgroupMount[] {
  const out: CgroupMount[] = []
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [pre, post] = line.split(' - ')
    if (!pre || !post) continue
    const [type, , superOpts = ''] = post.split(' ')
    if (type !== 'cgroup' && type !== 'cgroup2') continue
    const dir = (pre.split(' ')[4] ?? '').replace(/\\040/g, ' ')
    const controllers =
      type === 'cgroup'
        ? superOpts.split(',').filter((o) => !['rw', 'ro'].includes(o) && !o.includes('='))
        : []
    out.push({ type, dir, controllers })
  }
  return out
}

const write = (file: string, value: string): void =>
  runOpSync({ kind: 'fs.write', path: file, value }, () => fs.writeFileSync(file, value), undefined)

const readNum = (file: string): number => {
  const t = fs.readFileSync(file, 'utf8').trim()
  return t === 'max' ? Infinity : Number(t)
}

/** "key value" lines (cpu.stat, memory.events, memory.oom_control) as numbers. */
function readKeyed(file: string): Record<string, number> {
  const out: Record<string, number> = {}
  try {
    for (const l of fs.readFileSync(file, 'utf8').split('\n')) {
      const [k, v] = l.split(' ')
      if (k && v !== undefined) out[k] = Number(v)
    }
  } catch {
    // absent on this kernel: no figures
  }
  return out
}

/**
 * mkdir -p; with `below` (its parent must be there), only the last level: a parent removed
 * meanwhile (ENOENT) is not silently made again, unseeded, but fails the build (retryOnGone).
 */
function mkdirOp(dir: string, o: { below?: boolean } = {}): void {
  runOpSync(
    { kind: 'fs.mkdir', path: dir },
    () => {
      try {
        fs.mkdirSync(dir, { recursive: !o.below })
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      }
    },
    undefined,
  )
}

/** rmdir, retrying while the kernel still counts exiting tasks (EBUSY), up to ~2 s. */
function rmdirRetry(dir: string): void {
  runOpSync(
    { kind: 'fs.rmdir', path: dir },
    () => {
      for (let i = 0; ; i++) {
        try {
          fs.rmdirSync(dir)
          return
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code
          if (code === 'ENOENT') return
          if (code !== 'EBUSY' || i >= 200) throw err
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10)
        }
      }
    },
    undefined,
  )
}

/**
 * The parent directories above a group's `dir` (NSDN_CGROUP_PARENT's parts), deepest first, go
 * when nothing else uses them: a parent holding another group (EBUSY, ENOTEMPTY) stays, one
 * already gone (ENOENT) is fine. Nothing of nsdn's is left in the tree after its last container.
 */
function rmdirParents(dir: string): void {
  let d = dir
  for (const _ of parentParts()) {
    d = path.dirname(d)
    const stop = runOpSync(
      { kind: 'fs.rmdir', path: d, ifUnused: true },
      () => {
        try {
          fs.rmdirSync(d)
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code
          if (code === 'ENOENT') return false
          if (code === 'EBUSY' || code === 'ENOTEMPTY') return true
          throw err
        }
        return false
      },
      false,
    )
    if (stop) return
  }
}

/**
 * Build a group, again if a concurrent rmdirParents (another container's rm) took a parent away
 * between our mkdir and what follows (ENOENT, ENODEV): a bounded number of times.
 */
function retryOnGone(build: () => void): void {
  for (let i = 0; ; i++) {
    try {
      return build()
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      // ENODEV: a file of a group that went while we had it open
      if ((code !== 'ENOENT' && code !== 'ENODEV') || i >= 20) throw err
    }
  }
}

function pidsOf(dir: string): number[] {
  try {
    return fs
      .readFileSync(path.join(dir, 'cgroup.procs'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map(Number)
  } catch {
    return []
  }
}

/** A container's cgroup: one directory per hierarchy it lives in. */
export interface Cgroup {
  readonly backend: 'v1' | 'v2'
  readonly name: string
  /** Every directory of the group (for cleanup checks and `cgroup.procs` joins). */
  readonly dirs: string[]
  /** The cgroup.procs files a process writes its pid (or "0") to, to join the group. */
  procsFiles(): string[]
  create(limits: Limits): void
  addProc(pid: number): void
  pids(): number[]
  freeze(): void
  thaw(): void
  frozen(): boolean
  /** SIGKILL every process of the group. */
  kill(): void
  stats(): CgroupStats
  /** Kill what is left and remove the directories. */
  destroy(): void
}

const unsupported = (what: string, kconfig: string): KernelFeatureError =>
  new KernelFeatureError(what, kconfig, 'leave that limit out of the spec')

/** cgroup v2, on a tree of its own (the host's, or NSDN_CGROUP2_ROOT). */
export class CgroupV2 implements Cgroup {
  readonly backend = 'v2'
  readonly dir: string
  constructor(
    readonly name: string,
    readonly root: string,
  ) {
    this.dir = path.join(root, parent(), name)
  }
  get dirs(): string[] {
    return [this.dir]
  }
  procsFiles(): string[] {
    return [path.join(this.dir, 'cgroup.procs')]
  }
  private need(controller: string, dir: string): void {
    const avail = fs.readFileSync(path.join(dir, 'cgroup.controllers'), 'utf8').split(/\s+/)
    if (!avail.includes(controller))
      throw unsupported(
        `the ${controller} controller in the cgroup v2 tree ${this.root}`,
        'a cgroup2 hierarchy with controllers (systemd.unified_cgroup_hierarchy=1)',
      )
  }
  create(l: Limits): void {
    const controllers = [
      ...(l.memory !== undefined || l.memorySwap !== undefined ? ['memory'] : []),
      ...(l.cpuWeight !== undefined || l.cpus !== undefined ? ['cpu'] : []),
      ...(l.cpusetCpus !== undefined || l.cpusetMems !== undefined ? ['cpuset'] : []),
      ...(l.pids !== undefined ? ['pids'] : []),
      ...(l.ioWeight !== undefined ? ['io'] : []),
    ]
    for (const c of controllers) this.need(c, this.root)
    retryOnGone(() => {
      try {
        this.build(l, controllers)
      } catch (err) {
        this.destroy()
        throw err
      }
    })
  }
  private build(l: Limits, controllers: string[]): void {
    // each level enables the controllers for the one below it
    let d = this.root
    for (const part of [...parentParts(), '']) {
      for (const c of controllers) {
        const sub = path.join(d, 'cgroup.subtree_control')
        if (!fs.readFileSync(sub, 'utf8').split(/\s+/).includes(c)) write(sub, `+${c}`)
      }
      if (!part) break
      d = path.join(d, part)
      mkdirOp(d)
    }
    mkdirOp(this.dir)
    const f = (n: string): string => path.join(this.dir, n)
    if (l.memory !== undefined) write(f('memory.max'), String(l.memory))
    if (l.memorySwap !== undefined)
      write(f('memory.swap.max'), String(l.memorySwap - (l.memory ?? 0)))
    if (l.cpuWeight !== undefined) write(f('cpu.weight'), String(l.cpuWeight))
    if (l.cpus !== undefined)
      write(f('cpu.max'), `${Math.round(l.cpus * CPU_PERIOD_US)} ${CPU_PERIOD_US}`)
    if (l.cpusetCpus !== undefined) write(f('cpuset.cpus'), l.cpusetCpus)
    if (l.cpusetMems !== undefined) write(f('cpuset.mems'), l.cpusetMems)
    if (l.pids !== undefined) write(f('pids.max'), String(l.pids))
    if (l.ioWeight !== undefined) write(f('io.weight'), `default ${l.ioWeight}`)
  }
  addProc(pid: number): void {
    write(path.join(this.dir, 'cgroup.procs'), String(pid))
  }
  pids(): number[] {
    return pidsOf(this.dir)
  }
  freeze(): void {
    write(path.join(this.dir, 'cgroup.freeze'), '1')
    // cgroup.events says "frozen 1" once every task has stopped
    for (let i = 0; i < 500 && !this.frozen(); i++)
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2)
  }
  thaw(): void {
    write(path.join(this.dir, 'cgroup.freeze'), '0')
  }
  frozen(): boolean {
    try {
      return /^frozen 1$/m.test(fs.readFileSync(path.join(this.dir, 'cgroup.events'), 'utf8'))
    } catch {
      return false
    }
  }
  kill(): void {
    if (fs.existsSync(path.join(this.dir, 'cgroup.kill')))
      write(path.join(this.dir, 'cgroup.kill'), '1')
    else killEach(this)
  }
  stats(): CgroupStats {
    const f = (n: string): string => path.join(this.dir, n)
    const out: CgroupStats = {}
    if (fs.existsSync(f('memory.current'))) {
      const ev = readKeyed(f('memory.events'))
      const limit = readNum(f('memory.max'))
      out.memory = {
        usage: readNum(f('memory.current')),
        ...(Number.isFinite(limit) ? { limit } : {}),
        limitHits: ev.max ?? 0,
        oomKills: ev.oom_kill ?? 0,
      }
    }
    const cpu = readKeyed(f('cpu.stat'))
    out.cpu = {
      usageNs: (cpu.usage_usec ?? 0) * 1000,
      periods: cpu.nr_periods ?? 0,
      throttled: cpu.nr_throttled ?? 0,
      throttledNs: (cpu.throttled_usec ?? 0) * 1000,
    }
    if (fs.existsSync(f('pids.current'))) {
      const limit = readNum(f('pids.max'))
      out.pids = {
        current: readNum(f('pids.current')),
        ...(Number.isFinite(limit) ? { limit } : {}),
        limitHits: readKeyed(f('pids.events')).max ?? 0,
      }
    }
    return out
  }
  destroy(): void {
    if (!fs.existsSync(this.dir)) return
    if (this.pids().length) {
      this.kill()
      if (this.frozen()) this.thaw() // a frozen task dies only once thawed
    }
    rmdirRetry(this.dir)
    rmdirParents(this.dir)
  }
}

/**
 * A v1 cpuset group's cpus and mems: `want`'s value where given, else what it has, else (empty:
 * just made, here or by another creator) its parent's, seeding an empty parent first (another
 * creator may have made it again meanwhile). Printed always, written only where empty, so a
 * paste of --explain seeds a parent that nsdn found seeded already.
 */
function seedCpuset(dir: string, want: Record<string, string | undefined> = {}): void {
  for (const k of ['cpuset.cpus', 'cpuset.mems']) {
    const v = want[k]
    if (v !== undefined) write(path.join(dir, k), v)
    else cpusetValue(dir, k, true)
  }
}

/** The value of cpuset file `k` of `dir`, seeded from the parents where empty. */
function cpusetValue(dir: string, k: string, print = false): string {
  const file = path.join(dir, k)
  const now = fs.readFileSync(file, 'utf8').trim()
  if (now && !print) return now
  const value = now || cpusetValue(path.dirname(dir), k) // the root's is never empty
  runOpSync(
    { kind: 'fs.write', path: file, value },
    () => void (now === '' && fs.writeFileSync(file, value)),
    undefined,
  )
  return value
}

/** Freeze, SIGKILL every task, thaw: no fork can slip between listing and killing. */
function killEach(cg: Cgroup): void {
  const wasFrozen = cg.frozen()
  if (!wasFrozen) cg.freeze()
  for (const pid of cg.pids()) {
    try {
      runOpSync({ kind: 'kill', pid, signal: 'KILL' }, () => process.kill(pid, 'SIGKILL'), true)
    } catch {
      // gone already
    }
  }
  cg.thaw()
}

const V1_CONTROLLERS = ['memory', 'cpu', 'cpuacct', 'cpuset', 'pids', 'freezer', 'blkio'] as const
type V1Controller = (typeof V1_CONTROLLERS)[number]

/** cgroup v1: a directory in each controller's hierarchy, plus the v2 tree on a hybrid host. */
export class CgroupV1 implements Cgroup {
  readonly backend = 'v1'
  /** controller -> the group's directory in the hierarchy that has it. */
  private readonly at = new Map<V1Controller, string>()
  /** controller -> the mount point of its hierarchy. */
  private readonly roots = new Map<V1Controller, string>()
  private readonly unified: string | undefined
  constructor(
    readonly name: string,
    mounts: CgroupMount[] = cgroupMounts(),
  ) {
    for (const c of V1_CONTROLLERS) {
      const m = mounts.find((x) => x.type === 'cgroup' && x.controllers.includes(c))
      if (!m) continue
      this.roots.set(c, m.dir)
      this.at.set(c, path.join(m.dir, parent(), name))
    }
    const u = mounts.find((x) => x.type === 'cgroup2')
    this.unified = u ? path.join(u.dir, parent(), name) : undefined
  }
  get dirs(): string[] {
    const set = new Set(this.at.values())
    if (this.unified) set.add(this.unified)
    return [...set]
  }
  procsFiles(): string[] {
    return this.dirs.map((d) => path.join(d, 'cgroup.procs'))
  }
  private file(c: V1Controller, name: string): string {
    const d = this.at.get(c)
    if (!d) throw unsupported(`the cgroup v1 ${c} controller`, `CONFIG_CGROUP_${c.toUpperCase()}`)
    return path.join(d, name)
  }
  /** A limit file missing from the new group means the kernel lacks that limit. */
  private check(l: Limits): void {
    const needs: Array<[boolean, V1Controller, string, string]> = [
      [l.memory !== undefined, 'memory', 'memory.limit_in_bytes', 'CONFIG_MEMCG'],
      [l.memorySwap !== undefined, 'memory', 'memory.memsw.limit_in_bytes', 'CONFIG_MEMCG_SWAP'],
      [l.cpuWeight !== undefined, 'cpu', 'cpu.shares', 'CONFIG_FAIR_GROUP_SCHED'],
      [l.cpus !== undefined, 'cpu', 'cpu.cfs_quota_us', 'CONFIG_CFS_BANDWIDTH'],
      [l.pids !== undefined, 'pids', 'pids.max', 'CONFIG_CGROUP_PIDS'],
      [l.ioWeight !== undefined, 'blkio', 'blkio.weight', 'CONFIG_BFQ_GROUP_IOSCHED'],
    ]
    for (const [wanted, c, file, kconfig] of needs)
      if (wanted && !fs.existsSync(this.file(c, file)))
        throw unsupported(`${file} (cgroup v1 ${c})`, kconfig)
  }
  create(l: Limits): void {
    retryOnGone(() => {
      try {
        this.build(l)
      } catch (err) {
        this.destroy()
        throw err
      }
    })
  }
  private build(l: Limits): void {
    const cpusetRoot = this.roots.get('cpuset')
    if (cpusetRoot) {
      // A v1 cpuset group takes no task until its cpus and mems are set: copy the parent's.
      // Whenever they are empty, also in a parent another creator has just made.
      let d = cpusetRoot
      for (const part of parentParts()) {
        d = path.join(d, part)
        mkdirOp(d, { below: true })
        seedCpuset(d)
      }
    }
    const cpuset = this.at.get('cpuset')
    for (const d of this.dirs) mkdirOp(d, { below: d === cpuset })
    this.check(l)
    if (cpuset) seedCpuset(cpuset, { 'cpuset.cpus': l.cpusetCpus, 'cpuset.mems': l.cpusetMems })
    if (l.memory !== undefined)
      write(this.file('memory', 'memory.limit_in_bytes'), String(l.memory))
    if (l.memorySwap !== undefined)
      write(this.file('memory', 'memory.memsw.limit_in_bytes'), String(l.memorySwap))
    if (l.cpuWeight !== undefined)
      write(this.file('cpu', 'cpu.shares'), String(weightToShares(l.cpuWeight)))
    if (l.cpus !== undefined) {
      write(this.file('cpu', 'cpu.cfs_period_us'), String(CPU_PERIOD_US))
      write(this.file('cpu', 'cpu.cfs_quota_us'), String(Math.round(l.cpus * CPU_PERIOD_US)))
    }
    if (l.pids !== undefined) write(this.file('pids', 'pids.max'), String(l.pids))
    if (l.ioWeight !== undefined)
      write(this.file('blkio', 'blkio.weight'), String(Math.max(10, Math.round(l.ioWeight / 10))))
  }
  addProc(pid: number): void {
    for (const f of this.procsFiles()) write(f, String(pid))
  }
  pids(): number[] {
    const d = this.unified ?? this.at.get('pids') ?? this.at.get('freezer')
    return d ? pidsOf(d) : []
  }
  freeze(): void {
    write(this.file('freezer', 'freezer.state'), 'FROZEN')
    // FREEZING until every task has stopped
    for (let i = 0; i < 500 && !this.frozen(); i++)
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2)
  }
  thaw(): void {
    write(this.file('freezer', 'freezer.state'), 'THAWED')
  }
  frozen(): boolean {
    try {
      return fs.readFileSync(this.file('freezer', 'freezer.state'), 'utf8').trim() === 'FROZEN'
    } catch {
      return false
    }
  }
  kill(): void {
    if (this.unified && fs.existsSync(path.join(this.unified, 'cgroup.kill'))) {
      // cgroup.kill SIGKILLs frozen tasks too, but they die only once thawed
      write(path.join(this.unified, 'cgroup.kill'), '1')
      if (this.frozen()) this.thaw()
    } else killEach(this)
  }
  stats(): CgroupStats {
    const out: CgroupStats = {}
    const mem = this.at.get('memory')
    if (mem) {
      const limit = readNum(path.join(mem, 'memory.limit_in_bytes'))
      out.memory = {
        usage: readNum(path.join(mem, 'memory.usage_in_bytes')),
        // v1 reports "no limit" as a page-rounded LONG_MAX
        ...(limit < 2 ** 62 ? { limit } : {}),
        limitHits: readNum(path.join(mem, 'memory.failcnt')),
        oomKills: readKeyed(path.join(mem, 'memory.oom_control')).oom_kill ?? 0,
      }
    }
    const cpu = this.at.get('cpu')
    const acct = this.at.get('cpuacct')
    const st = cpu ? readKeyed(path.join(cpu, 'cpu.stat')) : {}
    out.cpu = {
      usageNs: acct ? readNum(path.join(acct, 'cpuacct.usage')) : 0,
      periods: st.nr_periods ?? 0,
      throttled: st.nr_throttled ?? 0,
      throttledNs: st.throttled_time ?? 0,
    }
    const pids = this.at.get('pids')
    if (pids) {
      const limit = readNum(path.join(pids, 'pids.max'))
      out.pids = {
        current: readNum(path.join(pids, 'pids.current')),
        ...(Number.isFinite(limit) ? { limit } : {}),
        limitHits: readKeyed(path.join(pids, 'pids.events')).max ?? 0,
      }
    }
    return out
  }
  destroy(): void {
    if (this.pids().length) this.kill()
    else if (this.frozen()) this.thaw()
    for (const d of this.dirs)
      if (fs.existsSync(d)) {
        rmdirRetry(d)
        rmdirParents(d)
      }
  }
}

/** v2 cpu.weight (1-10000) as v1 cpu.shares (2-262144), the inverse of runc's mapping. */
export function weightToShares(w: number): number {
  return Math.round(2 + ((w - 1) * 262142) / 9999)
}

/** The backend this host uses: v2 when the cgroup2 tree is the main one, else v1 (+ hybrid). */
export function probeBackend(): 'v1' | 'v2' {
  const forced = process.env.NSDN_CGROUP_BACKEND
  if (forced === 'v1' || forced === 'v2') return forced
  const mounts = cgroupMounts()
  if (mounts.some((m) => m.type === 'cgroup')) return 'v1'
  if (mounts.some((m) => m.type === 'cgroup2')) return 'v2'
  throw new NsdnError('E_UNAVAILABLE', 'no cgroup filesystem is mounted', {
    hint: 'mount one: mount -t cgroup2 none /sys/fs/cgroup',
  })
}

/** The cgroup of container `name` on this host's backend. */
export function cgroupFor(name: string, backend: 'v1' | 'v2' = probeBackend()): Cgroup {
  if (backend === 'v1') return new CgroupV1(name)
  const m = cgroupMounts().find((x) => x.type === 'cgroup2')
  if (!m) throw new NsdnError('E_UNAVAILABLE', 'no cgroup2 filesystem is mounted')
  return new CgroupV2(name, m.dir)
}

/** The cpus this machine has (`cpuset.cpus` of the root), for validating a cpuset. */
export function machineCpus(): Set<number> {
  const out = new Set<number>()
  const text = fs.readFileSync('/sys/devices/system/cpu/online', 'utf8').trim()
  for (const part of text.split(',')) {
    const [a, b] = part.split('-').map(Number)
    if (a === undefined) continue
    for (let i = a; i <= (b ?? a); i++) out.add(i)
  }
  return out
}
