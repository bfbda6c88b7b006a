/**
 * Leases as files, in the reference host-local plugin's layout, so that nsdn and that plugin can
 * share a data directory:
 *
 *     <dataDir>/<network>/<ip>                  "<containerId>\r\n<ifname>", no final line break
 *     <dataDir>/<network>/last_reserved_ip.<N>  the address last reserved in range set N
 *     <dataDir>/<network>/lock                  flock(2)ed for the length of each operation
 *
 * IPv6 file names are the RFC 5952 text (fd00::a), as Go prints them. The lock is a flock
 * (src/files.ts), which excludes the reference plugin too: it flocks the same file.
 * @module
 */
import { readdirSync, readFileSync, rmdirSync, unlinkSync, writeFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { join, resolve } from 'node:path'
import { ConfigError } from '../errors.js'
import { errnoOf, io, ioError, mkdirp, withFileLock } from '../files.js'
import type { IpamStore, Owner } from './store.js'

const LINE_BREAK = '\r\n'
const LAST_PREFIX = 'last_reserved_ip.'
const LOCK_FILE = 'lock'

/** A network name becomes a directory name: CNI SPEC's network name syntax keeps it one. */
function validNetworkName(name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name))
    throw new ConfigError(`invalid network name "${name}"`, 'network', {
      hint: 'start with a letter or digit; then letters, digits, "_", "." or "-"',
    })
  return name
}

/**
 * A lease file's name is an address. The cheap test first: the other files (lock,
 * last_reserved_ip.N) fail it, and a first isIP on a non-IPv4 name compiles Node's large IPv6
 * pattern, tens of ms of a plugin process's start.
 */
const isLease = (name: string): boolean => /^[0-9a-f.:]+$/i.test(name) && isIP(name) !== 0

export class FileStore implements IpamStore {
  private constructor(readonly location: string) {}

  /**
   * The store of one network, under `<dataDir>/<network>/`; creates the directory.
   * Equivalent: `mkdir -p -m 755 <dataDir>/<network>`
   */
  static open(dataDir: string, network: string): FileStore {
    const dir = resolve(dataDir, validNetworkName(network))
    mkdirp(dir)
    return new FileStore(dir)
  }

  /** Equivalent: `flock <dir>/lock <fn>` */
  withLock<T>(fn: () => T): Promise<T> {
    return withFileLock(join(this.location, LOCK_FILE), fn)
  }

  /**
   * Remove the network's directory when it holds no lease (only the lock and round-robin
   * files): what a rolled-back first add leaves. Runs under the lock; a process waiting for it
   * then finds the lock file gone and makes a new one. Equivalent: `rm -r <dir>`.
   */
  async removeIfUnused(): Promise<void> {
    await this.withLock(() => {
      const names = io(`ls ${this.location}`, () => readdirSync(this.location))
      if (names.some((n) => n !== LOCK_FILE && !n.startsWith(LAST_PREFIX))) return
      for (const n of names) if (n !== LOCK_FILE) this.unlink(join(this.location, n))
      this.unlink(join(this.location, LOCK_FILE))
      io(`rmdir ${this.location}`, () => rmdirSync(this.location))
    })
  }

  private unlink(file: string): void {
    try {
      unlinkSync(file)
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT') throw ioError(`rm ${file}`, err)
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
    this.unlink(join(this.location, ip))
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
      .filter(isLease)
      .map((ip) => ({ ip, holder: this.holder(ip) }))
    const matching = (content: string): string[] =>
      leases.filter((l) => l.holder === content).map((l) => l.ip)
    const found = matching(owner.containerId + LINE_BREAK + owner.ifname)
    // Leases written before the reference plugin recorded the interface hold the id alone.
    return found.length > 0 ? found : matching(owner.containerId)
  }

  all(): { ip: string; owner: Owner }[] {
    return io(`ls ${this.location}`, () => readdirSync(this.location))
      .filter(isLease)
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
