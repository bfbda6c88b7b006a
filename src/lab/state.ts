/**
 * What a deployed lab is, on disk under /run/nsdn/labs/NAME (labs do not outlive a boot, as
 * their namespaces do not): `lab.yaml`, the file as deployed (written atomically before
 * anything is created), and `journal`, one JSON line per object, appended and synced BEFORE
 * the object is created. A deploy killed at any point therefore leaves a journal that names
 * everything it may have made; destroy treats "already gone" as done.
 * @module
 */
import fs from 'node:fs'
import path from 'node:path'
import { NsdnError } from '../errors.js'
import type { Created } from './plan.js'

/** The labs' state directory ($NSDN_LAB_DIR for tests). */
export function labsDir(): string {
  return process.env.NSDN_LAB_DIR ?? '/run/nsdn/labs'
}

const dirOf = (name: string): string => path.join(labsDir(), name)

export interface Meta {
  name: string
  /** The lab file as given to deploy (absolute). */
  file: string
  hash: string
  /** Set when every step ran: a lab without it was interrupted or failed. */
  complete: boolean
}

/** Replace a file atomically (write a temporary, fsync, rename). */
function writeAtomic(file: string, data: string): void {
  const tmp = `${file}.tmp${process.pid}`
  const fd = fs.openSync(tmp, 'w', 0o644)
  try {
    fs.writeSync(fd, data)
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
  fs.renameSync(tmp, file)
}

/** Start the record of a lab: its text and meta (replacing a destroyed one's). */
export function begin(meta: Meta, text: string): Journal {
  const dir = dirOf(meta.name)
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 })
  writeAtomic(path.join(dir, 'lab.yaml'), text)
  writeAtomic(path.join(dir, 'meta.json'), JSON.stringify(meta, null, 2) + '\n')
  return new Journal(path.join(dir, 'journal'))
}

export function markComplete(meta: Meta): void {
  writeAtomic(
    path.join(dirOf(meta.name), 'meta.json'),
    JSON.stringify({ ...meta, complete: true }, null, 2) + '\n',
  )
}

/**
 * Replace the journal of a reconciled lab with what it now has (atomically: a kill leaves the
 * old journal, a superset, or the new one).
 */
export function rewriteJournal(name: string, created: readonly Created[]): void {
  writeAtomic(
    path.join(dirOf(name), 'journal'),
    created.map((o) => JSON.stringify(o) + '\n').join(''),
  )
}

/** Append-only: a line torn by a kill is ignored when read back. */
export class Journal {
  private readonly fd: number
  constructor(file: string) {
    this.fd = fs.openSync(file, 'a', 0o644)
  }
  /** Record objects about to be created; on disk before the call returns. */
  record(objs: readonly Created[]): void {
    if (!objs.length) return
    fs.writeSync(this.fd, objs.map((o) => JSON.stringify(o) + '\n').join(''))
    fs.fdatasyncSync(this.fd)
  }
  close(): void {
    fs.closeSync(this.fd)
  }
}

export interface Recorded {
  meta: Meta
  text: string
  created: Created[]
}

/** A lab's record, or undefined when no lab of that name is deployed. */
export function readLab(name: string): Recorded | undefined {
  const dir = dirOf(name)
  let meta: Meta
  try {
    meta = JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8')) as Meta
  } catch {
    return undefined
  }
  const text = fs.readFileSync(path.join(dir, 'lab.yaml'), 'utf8')
  let lines: string[] = []
  try {
    lines = fs.readFileSync(path.join(dir, 'journal'), 'utf8').split('\n')
  } catch {
    // killed before the first object
  }
  const created: Created[] = []
  for (const l of lines) {
    try {
      if (l) created.push(JSON.parse(l) as Created)
    } catch {
      // the torn last line of a killed deploy
    }
  }
  return { meta, text, created }
}

/** A lab that must exist (for destroy, inspect, verify...). */
export function mustReadLab(name: string): Recorded {
  const r = readLab(name)
  if (!r)
    throw new NsdnError('E_NOT_FOUND', `no lab "${name}" is deployed`, {
      hint: '"nsdn lab list" shows the deployed labs',
    })
  return r
}

/** Forget a lab (after destroy). */
export function forget(name: string): void {
  fs.rmSync(dirOf(name), { recursive: true, force: true })
}

/** Names of the deployed labs. */
export function listLabs(): string[] {
  try {
    return fs
      .readdirSync(labsDir())
      .filter((n) => fs.existsSync(path.join(dirOf(n), 'meta.json')))
      .sort()
  } catch {
    return []
  }
}
