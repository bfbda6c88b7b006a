/**
 * The container lifecycle: create, start, stop, kill, freeze, thaw, remove. Node plans every
 * step; nsdn-init (init/init.c) performs those only a single-threaded process can (user and
 * mount namespaces, /proc of the new PID namespace, pivot_root) and is the container's PID 1.
 * They talk over a socket on init's fd 3 (see init.c), so the cgroup membership, the uid/gid maps
 * and the networks are in place before the payload runs. Node does not stay behind: a detached
 * container is its init and its payload, nothing more.
 * @module
 */
import fs from 'node:fs'
import path from 'node:path'
import { Socket } from 'node:net'
import { NsdnError } from '../errors.js'
import { CLONE, mkfifo, spawnWithSocket, waitPid } from '../ffi/libc.js'
import { NetNs, netnsDir } from '../netns/netns.js'
import { logger } from '../log.js'
import { explainedAbove, runOpSync } from '../op.js'
import type { Op } from '../op.js'
import { cgroupFor, machineCpus } from './cgroups.js'
import type { Cgroup, CgroupStats } from './cgroups.js'
import { copyTree, getImage } from './image.js'
import { overlayDirs, rootfsSteps } from './rootfs.js'
import { capMask, parseSpec, toRaw } from './spec.js'
import type { ContainerSpec, IdMap } from './spec.js'
import {
  dataDir,
  execSocket,
  exitCode,
  initAlive,
  initPath,
  listNames,
  loadState,
  procStat,
  saveState,
  stateDir,
} from './state.js'
import type { ContainerState, Status } from './state.js'

const log = logger('runtime')

const NS_FLAGS: Record<string, [number, string]> = {
  user: [CLONE.NEWUSER, 'user'],
  mnt: [CLONE.NEWNS, 'mount'],
  uts: [CLONE.NEWUTS, 'uts'],
  ipc: [CLONE.NEWIPC, 'ipc'],
  net: [CLONE.NEWNET, 'net'],
  pid: [CLONE.NEWPID, 'pid'],
  cgroup: [CLONE.NEWCGROUP, 'cgroup'],
}

/**
 * Create a container from a spec: its state and, for an image root, its empty upper layer.
 * Nothing runs yet. Fails with E_EXISTS when the name is taken, leaving nothing behind.
 */
export function create(input: ContainerSpec | unknown): ContainerState {
  const spec = parseSpec(input, 'spec', machineCpus())
  const layers = 'image' in spec.rootfs ? getImage(spec.rootfs.image).layers : []
  const dir = stateDir(spec.name)
  fs.mkdirSync(path.dirname(dir), { recursive: true })
  try {
    fs.mkdirSync(dir) // the name's lock: exactly one creator wins
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST')
      throw new NsdnError('E_EXISTS', `container name "${spec.name}" is in use`, {
        hint: `remove it with "nsdn rm -f ${spec.name}" or pick another name`,
      })
    throw err
  }
  try {
    if ('image' in spec.rootfs) {
      const { upper, work } = overlayDirs(dataDir(spec.name))
      fs.rmSync(dataDir(spec.name), { recursive: true, force: true })
      for (const d of [upper, work])
        runOpSync(
          { kind: 'fs.mkdir', path: d },
          () => fs.mkdirSync(d, { recursive: true }),
          undefined,
        )
      const root = rootId(spec.uidMap)
      const rootG = rootId(spec.gidMap)
      // container root must own its upper layer to write to it
      if (root !== 0) for (const d of [upper, work]) fs.chownSync(d, root, rootG)
    }
    const st: ContainerState = {
      spec,
      created: new Date().toISOString(),
      cgroup: { backend: cgroupFor(spec.name).backend, dirs: [] },
      layers,
    }
    saveState(st)
    return st
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true })
    fs.rmSync(dataDir(spec.name), { recursive: true, force: true })
    throw err
  }
}

/** The host id container id 0 maps to (0 without a user namespace). */
function rootId(map: IdMap[]): number {
  const m = map.find((x) => x.container === 0)
  return m ? m.host : 0
}

export interface StartOptions {
  /** Foreground: init shares our stdio, and `exited` resolves with the payload's status. */
  attach?: boolean
}

export interface Started {
  name: string
  /** Host pid of the container's init (its PID 1). */
  pid: number
  /** /run/netns/NAME when the container has a network namespace of its own. */
  netnsPath?: string
  /** With `attach`: the payload's exit status. */
  exited?: Promise<number>
}

/** Plan fields: NUL-terminated strings, as init.c reads them. */
function planBytes(fields: string[]): Buffer {
  const body = Buffer.from(fields.map((f) => f + '\0').join(''))
  const len = Buffer.alloc(4)
  len.writeUInt32LE(body.length)
  return Buffer.concat([len, body])
}

/** An Op as init's plan step (through the choke point: logged; --explain prints the block). */
function planStep(op: Op): string[] {
  return explainedAbove(() =>
    runOpSync(op, () => {
      switch (op.kind) {
        case 'mount':
          return [
            'mount',
            op.source ?? '-',
            op.target,
            op.fstype ?? '-',
            String(op.flags),
            op.data ?? '-',
          ]
        case 'fs.mkdir':
          return ['mkdir', op.path]
        case 'fs.touch':
          return ['touch', op.path]
        case 'fs.symlink':
          return ['symlink', op.target, op.path]
        case 'pivot_root':
          return ['pivot', op.root]
        case 'sethostname':
          return ['hostname', op.name]
        case 'exec':
          return ['argv', String(op.argv.length), ...op.argv]
        default:
          throw new NsdnError('E_INTERNAL', `no plan step for ${op.kind}`)
      }
    }, []),
  )
}

function buildPlan(st: ContainerState, cg: Cgroup, detached: boolean): string[] {
  const { spec } = st
  const dir = stateDir(spec.name)
  let flags = 0
  for (const n of spec.namespaces) flags |= NS_FLAGS[n]![0]
  const fields = ['ns', String(flags), 'exitfile', path.join(dir, 'exit')]
  fields.push('execsock', execSocket(spec.name))
  const root = path.join(dir, 'rootfs')
  runOpSync(
    { kind: 'fs.mkdir', path: root },
    () => fs.mkdirSync(root, { recursive: true }),
    undefined,
  )
  const steps = rootfsSteps(spec, root, st.layers, dataDir(spec.name))
  if (spec.namespaces.includes('uts')) steps.push({ kind: 'sethostname', name: spec.hostname })
  const payload: Op = { kind: 'exec', argv: spec.command }
  // --explain: the whole container as one block, in the order a shell runs it
  const mapText = (m: IdMap[]): string =>
    m.map((x) => `${x.container} ${x.host} ${x.size}`).join('\n')
  runOpSync(
    {
      kind: 'container',
      procs: cg.procsFiles(),
      ns: spec.namespaces.map((n) => NS_FLAGS[n]![1]),
      ...(spec.namespaces.includes('net') ? { netnsFile: path.join(netnsDir(), spec.name) } : {}),
      ...(spec.namespaces.includes('user')
        ? { uidMap: mapText(spec.uidMap), gidMap: mapText(spec.gidMap) }
        : {}),
      steps: [...steps, payload],
      ...(spec.cwd !== '/' ? { cwd: spec.cwd } : {}),
      ...(detached ? { log: path.join(dir, 'log') } : {}),
    },
    () => undefined,
    undefined,
  )
  for (const op of steps) fields.push(...planStep(op))
  fields.push('caps', capMask(spec.capabilities), 'cwd', spec.cwd)
  for (const e of spec.env) fields.push('env', e)
  fields.push(...planStep(payload))
  return fields
}

/** Lines from init, one at a time. */
class InitChannel {
  private buf = ''
  private waiting: Array<(line: string | null) => void> = []
  private lines: Array<string | null> = []
  constructor(readonly sock: Socket) {
    sock.on('data', (d: Buffer) => {
      this.buf += d.toString()
      let i
      while ((i = this.buf.indexOf('\n')) >= 0) {
        this.push(this.buf.slice(0, i))
        this.buf = this.buf.slice(i + 1)
      }
    })
    sock.on('close', () => this.push(null))
    sock.on('error', () => undefined)
  }
  private push(l: string | null): void {
    const w = this.waiting.shift()
    if (w) w(l)
    else this.lines.push(l)
  }
  /** The next line; null once init closed the socket. */
  next(): Promise<string | null> {
    if (this.lines.length) return Promise.resolve(this.lines.shift()!)
    return new Promise((r) => this.waiting.push(r))
  }
  send(s: string | Buffer): void {
    this.sock.write(s)
  }
}

function initError(line: string | null, name: string): NsdnError {
  if (line === null)
    return new NsdnError('E_EXEC', `container "${name}": init ended before the payload started`, {
      hint: `"nsdn logs ${name}" may say why`,
    })
  const msg = line.slice(2)
  const notFound = /^exec .*No such file/.test(msg)
  return new NsdnError(notFound ? 'E_NOT_FOUND' : 'E_EXEC', `container "${name}": ${msg}`, {
    ...(notFound ? { hint: "the command must exist in the container's root filesystem" } : {}),
  })
}

function writeMaps(pid: number, spec: ContainerSpec): void {
  const text = (m: IdMap[]): string => m.map((x) => `${x.container} ${x.host} ${x.size}`).join('\n')
  for (const [file, map] of [
    ['uid_map', spec.uidMap],
    ['gid_map', spec.gidMap],
  ] as const) {
    const p = `/proc/${pid}/${file}`
    runOpSync(
      { kind: 'fs.write', path: p, value: text(map) },
      () => fs.writeFileSync(p, text(map)),
      undefined,
    )
  }
}

/** Remove what a run left: its netns name, networks, cgroup, exit file. */
async function cleanupRun(st: ContainerState): Promise<void> {
  const { spec } = st
  if (st.netns) {
    // detach is tolerant of a namespace already gone: leases and host ends are released anyway
    if (spec.networks.length) {
      const { detachNetwork, networkName } = await import('./networks.js')
      for (const n of [...spec.networks].reverse())
        await detachNetwork(spec.name, n).catch((err: unknown) =>
          log.warn({ err, network: networkName(n) }, 'detach failed'),
        )
    }
    if (NetNs.exists(st.netns)) NetNs.delete(st.netns)
  }
  cgroupFor(spec.name, st.cgroup.backend).destroy()
  fs.rmSync(path.join(stateDir(spec.name), 'exit'), { force: true })
}

function killInit(pid: number): void {
  try {
    runOpSync({ kind: 'kill', pid, signal: 'KILL' }, () => process.kill(pid, 'SIGKILL'), true)
  } catch {
    // gone already
  }
}

/** Start a created (or stopped) container; resolves once its payload runs. */
export async function start(name: string, opts: StartOptions = {}): Promise<Started> {
  const st = loadState(name)
  const { spec } = st
  if (initAlive(st))
    throw new NsdnError('E_EXISTS', `container "${name}" is already running`, {
      hint: `"nsdn exec ${name} -- CMD" runs a command in it`,
    })
  if (st.pid !== undefined || st.netns) await cleanupRun(st) // what a previous run left
  delete st.pid
  delete st.startTime
  delete st.netns
  const cg = cgroupFor(name, st.cgroup.backend)
  cg.create(spec.limits)
  st.cgroup = { backend: cg.backend, dirs: cg.dirs }
  saveState(st)
  let initPid: number | undefined
  let outer: number | undefined // init's first process: ours to reap once it said P
  try {
    const plan = planBytes(buildPlan(st, cg, !opts.attach))
    const log = opts.attach ? undefined : fs.openSync(path.join(stateDir(name), 'log'), 'a')
    let fifo: number | undefined
    if (!opts.attach) {
      // stdin is a fifo init holds open for reading and writing: `nsdn attach` writes to it
      const f = path.join(stateDir(name), 'stdin')
      if (!fs.existsSync(f)) mkfifo(f, 0o600)
      fifo = fs.openSync(f, fs.constants.O_RDWR)
    }
    let spawned: { pid: number; sock: number }
    try {
      spawned = spawnWithSocket(
        [initPath(), 'run'],
        opts.attach ? [0, 1, 2] : [fifo!, log!, log!],
        {
          setsid: !opts.attach,
        },
      )
    } catch (err) {
      throw new NsdnError('E_EXEC', `cannot start ${initPath()}: ${(err as Error).message}`, {
        hint: 'run scripts/setup.sh to build nsdn-init',
      })
    } finally {
      if (log !== undefined) fs.closeSync(log)
      if (fifo !== undefined) fs.closeSync(fifo)
    }
    const outerPid = spawned.pid
    outer = outerPid
    // before the plan: everything init forks is in the group
    explainedAbove(() => cg.addProc(outerPid))
    const ch = new InitChannel(new Socket({ fd: spawned.sock, readable: true, writable: true }))
    ch.send(plan)
    for (;;) {
      const line = await ch.next()
      if (line === 'U') {
        explainedAbove(() => writeMaps(outerPid, spec))
        ch.send('M')
      } else if (line?.startsWith('P ')) {
        // PID 1 exists, and its netns: name it and attach the networks while it mounts
        initPid = Number(line.slice(2))
        waitPid(outerPid) // it exits right after saying so
        outer = undefined
        st.pid = initPid
        st.startTime = procStat(initPid)?.startTime ?? ''
        st.started = new Date().toISOString()
        if (spec.namespaces.includes('net')) {
          explainedAbove(() => NetNs.attach(name, initPid!))
          st.netns = name
        }
        saveState(st)
        if (spec.networks.length) {
          const { attachNetwork } = await import('./networks.js')
          for (const n of spec.networks) {
            await attachNetwork(name, n)
            if (n.mac) {
              const { Rtnl } = await import('../netlink/rtnl.js')
              const { linkSet } = await import('../netlink/link.js')
              await linkSet(Rtnl.named(name), n.ifname, { address: n.mac })
            }
          }
        }
        ch.send('G')
      } else if (line?.startsWith('S ')) {
        break
      } else throw initError(line, name)
    }
    const started: Started = {
      name,
      pid: initPid!,
      ...(st.netns ? { netnsPath: path.join(netnsDir(), st.netns) } : {}),
    }
    if (opts.attach) started.exited = waitExit(ch, name, initPid!)
    else ch.sock.destroy()
    return started
  } catch (err) {
    if (initPid !== undefined) killInit(initPid)
    if (outer !== undefined) {
      killInit(outer)
      waitPid(outer)
    }
    if (initPid !== undefined) waitDead(initPid, 2000)
    await cleanupRun(st).catch((e: unknown) => log.warn({ err: e }, 'cleanup after a failed start'))
    delete st.pid
    delete st.netns
    saveState(st)
    throw err
  }
}

/** The payload's status, once init is gone (its end of the socket closes when it exits). */
async function waitExit(ch: InitChannel, name: string, initPid: number): Promise<number> {
  let code: number | undefined
  for (;;) {
    const line = await ch.next()
    if (line?.startsWith('X ')) code = Number(line.slice(2))
    if (line === null) {
      // The socket closes as init exits, a moment before the process is gone: until then the
      // container would still read as running.
      waitDead(initPid, 2000)
      return code ?? exitCode(name) ?? 128 + 9
    }
  }
}

const sleep = (ms: number): void =>
  void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)

/** Wait up to ms for process pid to be gone (or a zombie); true if it is. */
function waitDead(pid: number, ms: number): boolean {
  const end = Date.now() + ms
  for (;;) {
    const p = procStat(pid)
    if (!p || p.state === 'Z') return true
    if (Date.now() > end) return false
    sleep(5)
  }
}

export interface StopOptions {
  signal?: NodeJS.Signals
  /** Seconds before SIGKILL. */
  timeout?: number
}

/** Signal the payload (through init), wait, then kill the whole container. Like `lxc-stop`. */
export async function stop(name: string, o: StopOptions = {}): Promise<void> {
  const st = loadState(name)
  if (!initAlive(st)) return
  const pid = st.pid!
  const cg = cgroupFor(name, st.cgroup.backend)
  if (cg.frozen()) cg.thaw() // a frozen payload cannot act on the signal
  const sig = o.signal ?? 'SIGTERM'
  runOpSync(
    { kind: 'kill', pid, signal: sig.replace(/^SIG/, '') },
    () => process.kill(pid, sig),
    true,
  )
  const end = Date.now() + (o.timeout ?? 10) * 1000
  while (Date.now() < end && initAlive(st)) await new Promise((r) => setTimeout(r, 10))
  if (initAlive(st)) {
    killInit(pid) // PID 1 dies: the kernel kills the rest of its PID namespace
    waitDead(pid, 5000)
  }
  await releaseNetworks(st)
}

/** A stopped container holds no network: its leases, host ends and CNI attachments go (DEL). */
async function releaseNetworks(st: ContainerState): Promise<void> {
  if (!st.netns || !st.spec.networks.length) return
  const { detachNetwork, networkName } = await import('./networks.js')
  for (const n of [...st.spec.networks].reverse())
    await detachNetwork(st.spec.name, n).catch((err: unknown) =>
      log.warn({ err, network: networkName(n) }, 'detach failed'),
    )
}

/** Send a signal to the container's payload (through init). */
export function kill(name: string, signal: NodeJS.Signals = 'SIGKILL'): void {
  const st = loadState(name)
  requireRunning(st)
  if (signal === 'SIGKILL') {
    killInit(st.pid!)
    waitDead(st.pid!, 5000)
    return
  }
  runOpSync(
    { kind: 'kill', pid: st.pid!, signal: signal.replace(/^SIG/, '') },
    () => process.kill(st.pid!, signal),
    true,
  )
}

function requireRunning(st: ContainerState): void {
  if (!initAlive(st))
    throw new NsdnError('E_NOT_FOUND', `container "${st.spec.name}" is not running`, {
      hint: `start it with "nsdn start ${st.spec.name}"`,
    })
}

export function freeze(name: string): void {
  const st = loadState(name)
  requireRunning(st)
  cgroupFor(name, st.cgroup.backend).freeze()
}

export function thaw(name: string): void {
  const st = loadState(name)
  requireRunning(st)
  cgroupFor(name, st.cgroup.backend).thaw()
}

/** Remove a container: its processes (with force), cgroup, netns, networks, layers, state. */
export async function remove(name: string, o: { force?: boolean } = {}): Promise<void> {
  const st = loadState(name)
  if (initAlive(st)) {
    if (!o.force)
      throw new NsdnError('E_USAGE', `container "${name}" is running`, {
        hint: `stop it first ("nsdn stop ${name}") or force it: nsdn rm -f ${name}`,
      })
    const cg = cgroupFor(name, st.cgroup.backend)
    if (cg.frozen()) cg.thaw()
    killInit(st.pid!)
    waitDead(st.pid!, 5000)
  }
  await cleanupRun(st)
  const rm = (p: string): void =>
    runOpSync(
      { kind: 'rm', path: p },
      () => fs.rmSync(p, { recursive: true, force: true }),
      undefined,
    )
  rm(dataDir(name))
  rm(stateDir(name))
}

export interface ContainerInfo {
  name: string
  status: Status
  pid?: number
  image?: string
  hostname: string
  command: string[]
  created: string
  started?: string
  exitCode?: number
  netns?: string
  limits: ContainerSpec['limits']
  usage?: CgroupStats
}

export function status(st: ContainerState): Status {
  if (st.pid === undefined)
    return exitCode(st.spec.name) === undefined && !st.started ? 'created' : 'stopped'
  if (!initAlive(st)) return 'stopped'
  return cgroupFor(st.spec.name, st.cgroup.backend).frozen() ? 'frozen' : 'running'
}

export function info(name: string): ContainerInfo {
  const st = loadState(name)
  const s = status(st)
  const code = exitCode(name)
  return {
    name,
    status: s,
    ...(s === 'running' || s === 'frozen' ? { pid: st.pid! } : {}),
    ...('image' in st.spec.rootfs ? { image: st.spec.rootfs.image } : {}),
    hostname: st.spec.hostname,
    command: st.spec.command,
    created: st.created,
    ...(st.started ? { started: st.started } : {}),
    ...(s === 'stopped' && code !== undefined ? { exitCode: code } : {}),
    ...(st.netns ? { netns: st.netns } : {}),
    limits: st.spec.limits,
    ...(s === 'running' || s === 'frozen'
      ? { usage: cgroupFor(name, st.cgroup.backend).stats() }
      : {}),
  }
}

export function list(): ContainerInfo[] {
  return listNames().map(info)
}

/** The cgroup of a container (for stats, tests and exec). */
export function cgroupOf(name: string): Cgroup {
  return cgroupFor(name, loadState(name).cgroup.backend)
}

/** `nsdn clone SRC NEW`: the spec under a new name, and a copy of the upper layer. */
export function clone(src: string, dst: string): ContainerState {
  const st = loadState(src)
  if (initAlive(st))
    throw new NsdnError('E_USAGE', `container "${src}" is running`, {
      hint: `stop it first: a running container's files may change while they are copied`,
    })
  const hostname = st.spec.hostname === src ? dst : st.spec.hostname
  const made = create({ ...toRaw(st.spec), name: dst, hostname })
  if ('image' in st.spec.rootfs) {
    try {
      copyTree(overlayDirs(dataDir(src)).upper, overlayDirs(dataDir(dst)).upper)
    } catch (err) {
      fs.rmSync(dataDir(dst), { recursive: true, force: true })
      fs.rmSync(stateDir(dst), { recursive: true, force: true })
      throw err
    }
  }
  return made
}
