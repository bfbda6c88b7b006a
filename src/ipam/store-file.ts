/**
 * Leases as files, in the reference host-local plugin's layout, so that nsdn and that plugin can
 * share a data directory:
 *
 *     <dataDir>/<network>/<ip>                  "<containerId>\r\n<ifname>", no final line break
 *     <dataDir>/<network>/last_reserved_ip.<N>  the address last reserved in range set N
 *     <dataDir>/<network>/lock                  flock(2)ed for the length of each operation
 *
 * IPv6 file names are the RFC 5952 text (fd00::a), as Go prints them. flock rather than a lock
 * file made with O_EXCL: the kernel drops the lock when its holder dies, so no stale lock can
 * outlive a killed plugin, and it excludes the reference plugin too, which flocks the same file.
 * @module
 */
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync } from 'node:fs'
import { constants as fsc, unlinkSync, writeFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { join, resolve } from 'node:path'
import { ConfigError, KernelError, NsdnError, codeForErrno } from '../errors.js'
import { LOCK, flock, flockAsync } from '../ffi/libc.js'
import type { IpamStore, Owner } from './store.js'

const LINE_BREAK = '\r\n'
const LAST_PREFIX = 'last_reserved_ip.'

/**
 * The tail of each lock file's queue in this process. Callers in one process wait here, in
 * order, so that at most one of them waits in the kernel (on a pool thread) per lock file.
 */
const queues = new Map<string, Promise<unknown>>()

function errnoOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : undefined
}

/** Node's system error as a KernelError with a code; anything else as it is. */
function ioError(what: string, err: unknown): unknown {
  const errno = errnoOf(err)
  if (err instanceof NsdnError || errno === undefined) return err
  return new KernelError(codeForErrno(errno), `${what}: ${errno}`, errno, undefined, {
    cause: err,
    ...(errno === 'EACCES' && { hint: 'run as root, or point dataDir at a writable directory' }),
  })
}

function io<T>(what: string, f: () => T): T {
  try {
    return f()
  } catch (err) {
    throw ioError(what, err)
  }
}

/** A network name becomes a directory name: CNI SPEC's network name syntax keeps it one. */
function validNetworkName(name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name))
    throw new ConfigError(`invalid network name "${name}"`, 'network', {
      hint: 'start with a letter or digit; then letters, digits, "_", "." or "-"',
    })
  return name
}

export class FileStore implements IpamStore {
  private constructor(readonly location: string) {}

  /**
   * The store of one network, under `<dataDir>/<network>/`; creates the directory.
   * Equivalent: `mkdir -p -m 755 <dataDir>/<network>`
   */
  static open(dataDir: string, network: string): FileStore {
    const dir = resolve(dataDir, validNetworkName(network))
    io(`mkdir ${dir}`, () => mkdirSync(dir, { recursive: true, mode: 0o755 }))
    return new FileStore(dir)
  }

  withLock<T>(fn: () => T): Promise<T> {
    const key = this.location
    const run = (queues.get(key) ?? Promise.resolve()).then(() => this.locked(fn))
    const tail = run.catch(() => undefined)
    queues.set(key, tail)
    void tail.then(() => queues.get(key) === tail && queues.delete(key))
    return run
  }

  /** Equivalent: `flock <dir>/lock <fn>` */
  private async locked<T>(fn: () => T): Promise<T> {
    const path = join(this.location, 'lock')
    const fd = io(`open ${path}`, () => openSync(path, fsc.O_RDONLY | fsc.O_CREAT, 0o644))
    try {
      // Try without waiting first; wait off the main thread only while another process holds it.
      while (!flock(fd, LOCK.EX | LOCK.NB)) if (await flockAsync(fd, LOCK.EX)) break
      return fn()
    } finally {
      closeSync(fd) // drops the lock
    }
  }

  reserve(ip: string, owner: Owner, rangeSet: number): boolean {
    const file = join(this.location, ip)
    try {
      // O_EXCL: an address another process took first stays theirs.
      writeFileSync(file, owner.containerId + LINE_BREAK + owner.ifname, {
        flag: 'wx',
        mode: 0o644,
      })
    } catch (err) {
      if (errnoOf(err) === 'EEXIST') return false
      this.release(ip)
      throw ioError(`write ${file}`, err)
    }
    const last = join(this.location, LAST_PREFIX + rangeSet)
    io(`write ${last}`, () => writeFileSync(last, ip, { mode: 0o644 }))
    return true
  }

  release(ip: string): void {
    const file = join(this.location, ip)
    try {
      unlinkSync(file)
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT') throw ioError(`rm ${file}`, err)
    }
  }

  lastReserved(rangeSet: number): string | undefined {
    const file = join(this.location, LAST_PREFIX + rangeSet)
    try {
      return readFileSync(file, 'utf8').trim()
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return undefined
      throw ioError(`read ${file}`, err)
    }
  }

  getByOwner(owner: Owner): string[] {
    const leases = io(`ls ${this.location}`, () => readdirSync(this.location))
      .filter((name) => isIP(name) !== 0)
      .map((ip) => ({ ip, holder: this.holder(ip) }))
    const matching = (content: string): string[] =>
      leases.filter((l) => l.holder === content).map((l) => l.ip)
    const found = matching(owner.containerId + LINE_BREAK + owner.ifname)
    // Leases written before the reference plugin recorded the interface hold the id alone.
    return found.length > 0 ? found : matching(owner.containerId)
  }

  all(): { ip: string; owner: Owner }[] {
    return io(`ls ${this.location}`, () => readdirSync(this.location))
      .filter((name) => isIP(name) !== 0)
      .map((ip) => {
        const [containerId = '', ifname = ''] = this.holder(ip).split(LINE_BREAK)
        return { ip, owner: { containerId, ifname } }
      })
  }

  releaseByOwner(owner: Owner): string[] {
    const ips = this.getByOwner(owner)
    for (const ip of ips) this.release(ip)
    return ips
  }

  /** A lease file's content, trimmed as the reference plugin compares it. */
  private holder(ip: string): string {
    const file = join(this.location, ip)
    return io(`read ${file}`, () => readFileSync(file, 'utf8')).trim()
  }
}
