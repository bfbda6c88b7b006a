/**
 * State on disk: directories made with a bounded `mkdir -p`, and lock files held with flock(2).
 * Every failure names the path and the errno.
 *
 * Node's own `mkdirSync(dir, { recursive: true })` spins for ever where mkdir answers ENOENT for
 * a parent that exists (under /proc, /sys): so directories are made here, one level at a time.
 * flock rather than a lock file made with O_EXCL: the kernel drops the lock when its holder
 * dies, so no stale lock outlives a killed process.
 * @module
 */
import fs from 'node:fs'
import path from 'node:path'
import { KernelError, NsdnError, codeForErrno } from './errors.js'
import { LOCK, flock, flockAsync } from './ffi/libc.js'

export function errnoOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : undefined
}

/** Node's system error as a KernelError that names what failed and its errno. */
export function ioError(what: string, err: unknown): unknown {
  const errno = errnoOf(err)
  if (err instanceof NsdnError || errno === undefined) return err
  return new KernelError(codeForErrno(errno), `${what}: ${errno}`, errno, undefined, {
    cause: err,
    ...(errno === 'EACCES' && { hint: 'run as root, or point it at a writable directory' }),
    ...(errno === 'ENOENT' && { hint: 'the directory above it cannot hold directories' }),
  })
}

export function io<T>(what: string, f: () => T): T {
  try {
    return f()
  } catch (err) {
    throw ioError(what, err)
  }
}

/**
 * `mkdir -p -m MODE DIR`: each missing level is made once; a level that exists and is no
 * directory, or a mkdir that fails for any other reason, is an error naming the path.
 * Returns the first directory it made (undefined when DIR existed).
 */
export function mkdirp(dir: string, mode = 0o755): string | undefined {
  const abs = path.resolve(dir)
  const missing: string[] = []
  for (let d = abs; ; d = path.dirname(d)) {
    const st = io(`mkdir ${abs}`, () => fs.statSync(d, { throwIfNoEntry: false }))
    if (st) {
      if (!st.isDirectory()) throw ioError(`mkdir ${abs}`, { code: 'ENOTDIR' })
      break
    }
    missing.unshift(d)
    if (d === path.dirname(d)) break
  }
  for (const d of missing)
    try {
      fs.mkdirSync(d, { mode })
    } catch (err) {
      // A concurrent mkdir made it first: fine when it is a directory.
      if (errnoOf(err) !== 'EEXIST' || !fs.statSync(d).isDirectory())
        throw ioError(`mkdir ${d}`, err)
    }
  return missing[0]
}

/** How often a lock wait may end without the lock (a signal) or find its file replaced. */
const LOCK_TRIES = 50

/**
 * The tail of each lock file's queue in this process. Callers in one process wait here, in
 * order, so that at most one of them waits in the kernel (on a pool thread) per lock file, and
 * two callers of one process exclude each other too.
 */
const queues = new Map<string, Promise<unknown>>()

/**
 * Run fn holding an exclusive flock on `file` (made, with its directory, when missing).
 * A lock file may be removed by its holder (an emptied lease directory): a waiter that then
 * holds the lock of a removed file opens the new one. Equivalent: `flock FILE fn`.
 */
export function withFileLock<T>(file: string, fn: () => T | Promise<T>): Promise<T> {
  const run = (queues.get(file) ?? Promise.resolve()).then(() => locked(file, fn))
  const tail = run.catch(() => undefined)
  queues.set(file, tail)
  void tail.then(() => queues.get(file) === tail && queues.delete(file))
  return run
}

async function locked<T>(file: string, fn: () => T | Promise<T>): Promise<T> {
  for (let i = 0; i < LOCK_TRIES; i++) {
    mkdirp(path.dirname(file))
    const fd = io(`open ${file}`, () =>
      fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_CREAT, 0o644),
    )
    try {
      // Try without waiting first; wait off the main thread only while another holds it.
      if (!flock(fd, LOCK.EX | LOCK.NB) && !(await flockAsync(fd, LOCK.EX))) continue
      if (fs.fstatSync(fd).nlink === 0) continue // removed while we waited
      return await fn()
    } finally {
      fs.closeSync(fd) // drops the lock
    }
  }
  throw new NsdnError('E_TRY_AGAIN', `could not lock ${file} in ${LOCK_TRIES} tries`, {
    hint: 'something keeps interrupting the wait or replacing the file; try again',
  })
}
