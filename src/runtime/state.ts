/**
 * Where containers and images live, and each container's state file. Runtime state is on /run
 * (NSDN_RUN_DIR, default /run/nsdn): containers/NAME/{state.json, log, exit, rootfs}. Data that
 * should outlive a boot, image layers and containers' upper layers, is under NSDN_LIB_DIR
 * (default /var/lib/nsdn). Writes are atomic (temp file + rename). Whether a container runs is
 * read from the kernel, not trusted from the file: a container whose init died shows stopped.
 * @module
 */
import fs from 'node:fs'
import path from 'node:path'
import { NsdnError } from '../errors.js'
import type { ContainerSpec } from './spec.js'

export function runDir(): string {
  return process.env.NSDN_RUN_DIR ?? '/run/nsdn'
}

export function libDir(): string {
  return process.env.NSDN_LIB_DIR ?? '/var/lib/nsdn'
}

/** The compiled init (scripts/setup.sh builds it into dist/); NSDN_INIT overrides. */
export function initPath(): string {
  return process.env.NSDN_INIT ?? path.resolve(__dirname, '../../nsdn-init')
}

/** The state directory of container `name`. */
export const stateDir = (name: string): string => path.join(runDir(), 'containers', name)
/** Where the container's init takes exec requests (init.c). */
export const execSocket = (name: string): string => path.join(stateDir(name), 'exec.sock')
/** The directory holding the container's upper and work directories. */
export const dataDir = (name: string): string => path.join(libDir(), 'containers', name)

export interface ContainerState {
  spec: ContainerSpec
  created: string
  /** Host pid of the container's init while it was started; with its start time (pid reuse). */
  pid?: number
  startTime?: string
  started?: string
  /** The cgroup backend and directories (removed on rm). */
  cgroup: { backend: 'v1' | 'v2'; dirs: string[] }
  /** The named netns (/run/netns/NAME) bound to the container's network namespace. */
  netns?: string
  /** Layer ids below the upper layer, top first. */
  layers: string[]
}

export type Status = 'created' | 'running' | 'frozen' | 'stopped'

/** Write a file atomically: readers see the old or the new content, never a part. */
export function writeAtomic(file: string, data: string): void {
  const tmp = `${file}.${process.pid}.tmp`
  fs.writeFileSync(tmp, data)
  fs.renameSync(tmp, file)
}

export function saveState(st: ContainerState): void {
  writeAtomic(path.join(stateDir(st.spec.name), 'state.json'), JSON.stringify(st, null, 2))
}

export function loadState(name: string): ContainerState {
  try {
    return JSON.parse(fs.readFileSync(path.join(stateDir(name), 'state.json'), 'utf8'))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new NsdnError('E_NOT_FOUND', `no container named "${name}"`, {
        hint: '"nsdn ps -a" lists the containers',
      })
    throw err
  }
}

export function listNames(): string[] {
  try {
    return fs
      .readdirSync(path.join(runDir(), 'containers'))
      .filter((n) => fs.existsSync(path.join(stateDir(n), 'state.json')))
      .sort()
  } catch {
    return []
  }
}

/** Field 22 of /proc/PID/stat (start time in clock ticks) and its state letter. */
export function procStat(pid: number): { state: string; startTime: string } | undefined {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ')
    return { state: f[0] ?? '?', startTime: f[19] ?? '' }
  } catch {
    return undefined
  }
}

/** Is the container's init (the same process, not a reused pid) alive? */
export function initAlive(st: ContainerState): boolean {
  if (st.pid === undefined) return false
  const p = procStat(st.pid)
  return p !== undefined && p.state !== 'Z' && p.startTime === st.startTime
}

/** The payload's exit status, as init wrote it (undefined while it runs or if init was killed). */
export function exitCode(name: string): number | undefined {
  try {
    const t = fs.readFileSync(path.join(stateDir(name), 'exit'), 'utf8').trim()
    return t === '' ? undefined : Number(t)
  } catch {
    return undefined
  }
}
