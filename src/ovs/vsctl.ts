/**
 * An ovs-vsctl client. Every call is an argv array (never a shell) with `--timeout` and, for a
 * private instance, `--db=unix:...`; the commands of one step go into one call, `--` between
 * them, so OVSDB applies them as one transaction. Writes use `--may-exist` / `--if-exists`, so
 * they can be repeated. Reads use `--format=json`. The program runner is injectable (as
 * go-openvswitch's ExecFunc is), so tests record argv without Open vSwitch.
 * @module
 */
import { type ExecFileException, execFile } from 'node:child_process'
import { ConfigError, type ErrorCode, ExecError, NsdnError, isCode } from '../errors.js'
import { logger } from '../log.js'
import { runOp } from '../op.js'
import { quoteArgv } from '../teach/quote.js'
import { parseIntIn, validIfName } from '../validate.js'

/** How a program run ended. */
export interface ExecResult {
  /** Exit status; null when killed by a signal or never started. */
  exitCode: number | null
  signal: string | null
  stdout: string
  stderr: string
  /** The program could not be started: errno name (ENOENT: not installed). */
  spawnError?: string
  /** Killed by the runner's own timeout. */
  timedOut?: boolean
}

/** Runs a program; never rejects, the result says how it ended. */
export type ExecFunc = (
  file: string,
  args: readonly string[],
  timeoutMs: number,
) => Promise<ExecResult>

/** The real runner: execFile, no shell, with a timeout. */
export const execProgram: ExecFunc = (file, args, timeoutMs) =>
  new Promise((resolve) => {
    const opts = { timeout: timeoutMs, maxBuffer: 64 << 20, encoding: 'utf8' as const }
    execFile(file, args, opts, (err: ExecFileException | null, stdout, stderr) => {
      if (!err) return resolve({ exitCode: 0, signal: null, stdout, stderr })
      if (typeof err.code === 'string')
        return resolve({ exitCode: null, signal: null, stdout, stderr, spawnError: err.code })
      resolve({
        exitCode: err.code ?? null,
        signal: err.signal ?? null,
        stdout,
        stderr,
        ...(err.killed ? { timedOut: true } : {}),
      })
    })
  })

/** One ovs-vsctl command with its own options first: `['--may-exist', 'add-br', 'br0']`. */
export type VsctlCommand = readonly string[]

/** Bridge datapath: the kernel module ("system") or the userspace one ("netdev"). */
export type DatapathType = 'system' | 'netdev'

export interface PortOpts {
  /** Access VLAN (Port tag): the port carries untagged frames of this VLAN. */
  tag?: number
  /** VLANs a trunk port carries tagged (Port trunks). */
  trunks?: number[]
  /** Interface mtu_request: OVS sets the device MTU. */
  mtu?: number
}

/** Hint when Open vSwitch is not installed (the Debian package). */
export const HINT_INSTALL = 'apt-get install openvswitch-switch'
/** Hint when no database or ovs-vswitchd answers. */
export const HINT_START = 'start one with "nsdn ovs start"'

/** Bridge and port names become device names; ovs-vsctl would read "-x" as an option. */
function ovsName(name: string, where: string): string {
  validIfName(name, where)
  if (/^[-@]/.test(name))
    throw new ConfigError(`"${name}" cannot start with "-" or "@"`, where, {
      hint: 'start the name with a letter or digit',
    })
  return name
}

const vid = (v: number, where: string): number => parseIntIn(v, 0, 4095, where)

function portSettings(port: string, o: PortOpts): VsctlCommand[] {
  const cols: string[] = []
  if (o.tag !== undefined) cols.push(`tag=${vid(o.tag, 'tag')}`)
  if (o.trunks?.length) cols.push(`trunks=${o.trunks.map((t) => vid(t, 'trunks')).join(',')}`)
  const out: VsctlCommand[] = cols.length ? [['set', 'Port', port, ...cols]] : []
  if (o.mtu !== undefined)
    out.push(['set', 'Interface', port, `mtu_request=${parseIntIn(o.mtu, 68, 65535, 'mtu')}`])
  return out
}

/**
 * Command builders, for batching several into one call:
 * `vs.run([...cmd.addBr('br0'), ...cmd.addPort('br0', 'v1', { tag: 100 })])`.
 */
export const cmd = {
  /** Equivalent: `ovs-vsctl --may-exist add-br BR [-- set Bridge BR datapath_type=T]`. */
  addBr(name: string, o: { datapathType?: DatapathType } = {}): VsctlCommand[] {
    ovsName(name, 'bridge name')
    const out: VsctlCommand[] = [['--may-exist', 'add-br', name]]
    if (o.datapathType) out.push(['set', 'Bridge', name, `datapath_type=${o.datapathType}`])
    return out
  },
  /** Equivalent: `ovs-vsctl --if-exists del-br BR`. */
  delBr(name: string): VsctlCommand[] {
    return [['--if-exists', 'del-br', ovsName(name, 'bridge name')]]
  },
  /**
   * Settings are applied even when the port exists, so a repeated call converges.
   * Equivalent: `ovs-vsctl --may-exist add-port BR P -- set Port P tag=T trunks=A,B
   * -- set Interface P mtu_request=M`.
   */
  addPort(br: string, port: string, o: PortOpts = {}): VsctlCommand[] {
    ovsName(br, 'bridge name')
    ovsName(port, 'port name')
    return [['--may-exist', 'add-port', br, port], ...portSettings(port, o)]
  },
  /** Equivalent: `ovs-vsctl --if-exists del-port [BR] P`. */
  delPort(port: string, br?: string): VsctlCommand[] {
    ovsName(port, 'port name')
    return [['--if-exists', 'del-port', ...(br ? [ovsName(br, 'bridge name')] : []), port]]
  },
  /** Equivalent: `ovs-vsctl set Port P tag=T`, or `ovs-vsctl clear Port P tag` for null. */
  setPortTag(port: string, tag: number | null): VsctlCommand[] {
    ovsName(port, 'port name')
    if (tag === null) return [['clear', 'Port', port, 'tag']]
    return [['set', 'Port', port, `tag=${vid(tag, 'tag')}`]]
  },
  /** Equivalent: `ovs-vsctl set Port P trunks=A,B`, or `ovs-vsctl clear Port P trunks`. */
  setTrunks(port: string, trunks: readonly number[]): VsctlCommand[] {
    ovsName(port, 'port name')
    if (trunks.length === 0) return [['clear', 'Port', port, 'trunks']]
    return [['set', 'Port', port, `trunks=${trunks.map((t) => vid(t, 'trunks')).join(',')}`]]
  },
}

// --- OVSDB JSON (RFC 7047 §5.1 notation, as ovs-vsctl --format=json prints it) -------------

/** A reference to a row: `["uuid", "..."]` in the JSON. */
export interface OvsUuid {
  uuid: string
}
/** One scalar of an OVSDB column. */
export type OvsAtom = string | number | boolean | OvsUuid
/** An atom, a set (array) or a map. A one-element set is printed as its bare atom. */
export type OvsValue = OvsAtom | OvsAtom[] | Map<string, OvsAtom>
/** One row: column name to value. */
export type OvsRow = Record<string, OvsValue>

function decodeError(what: string): NsdnError {
  return new NsdnError('E_DECODE', `ovs-vsctl printed ${what}`, {
    hint: 'check that ovs-vsctl is Open vSwitch 2.x or later',
  })
}

function parseAtom(v: unknown): OvsAtom {
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v
  if (Array.isArray(v) && v[0] === 'uuid' && typeof v[1] === 'string') return { uuid: v[1] }
  throw decodeError(`an unknown OVSDB atom ${JSON.stringify(v)}`)
}

/** Map keys as text: a uuid key becomes its uuid, a number its decimal form. */
const keyOf = (a: OvsAtom): string => (typeof a === 'object' ? a.uuid : String(a))

/** Decode one OVSDB value: `["set",[...]]`, `["map",[[k,v],...]]`, `["uuid","..."]`, atoms. */
export function parseOvsValue(v: unknown): OvsValue {
  if (Array.isArray(v) && v[0] === 'set' && Array.isArray(v[1])) return v[1].map(parseAtom)
  if (Array.isArray(v) && v[0] === 'map' && Array.isArray(v[1])) {
    const m = new Map<string, OvsAtom>()
    for (const pair of v[1]) {
      if (!Array.isArray(pair) || pair.length !== 2) throw decodeError('a malformed OVSDB map')
      m.set(keyOf(parseAtom(pair[0])), parseAtom(pair[1]))
    }
    return m
  }
  return parseAtom(v)
}

/** Decode `ovs-vsctl --format=json` output: `{"headings":[...],"data":[[...],...]}`. */
export function parseOvsTable(text: string): OvsRow[] {
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch {
    throw decodeError(`output that is not JSON: ${text.slice(0, 80)}`)
  }
  const t = doc as { headings?: unknown; data?: unknown }
  if (!Array.isArray(t.headings) || !Array.isArray(t.data)) throw decodeError('no headings/data')
  const headings = t.headings.map(String)
  return t.data.map((row: unknown) => {
    if (!Array.isArray(row) || row.length !== headings.length) throw decodeError('a ragged row')
    return Object.fromEntries(headings.map((h, i) => [h, parseOvsValue(row[i])]))
  })
}

/** A column as a set: an empty set is [], a bare atom (one-element set) is [atom]. */
export function ovsSet(v: OvsValue | undefined): OvsAtom[] {
  if (v === undefined) return []
  if (Array.isArray(v)) return v
  if (v instanceof Map) throw decodeError('a map where a set was expected')
  return [v]
}

/** The VLAN view of a row of the Port table. */
export interface PortInfo {
  name: string
  /** Access VLAN, or undefined for none. */
  tag: number | undefined
  trunks: number[]
  /** Uuids of the port's rows in the Interface table. */
  interfaces: string[]
}

// --- The client --------------------------------------------------------------------------

/** Where a client points and how long it waits. */
export interface VsctlOptions {
  /** OVSDB remote, e.g. "unix:/run/nsdn/ovs/db.sock"; undefined: ovs-vsctl's default. */
  db?: string
  /** Seconds ovs-vsctl waits for the database and ovs-vswitchd (--timeout); default 5. */
  timeoutSec?: number
  /** Change the database without waiting for ovs-vswitchd to apply it (--no-wait). */
  noWait?: boolean
  /** The ovs-vswitchd log, named in errors. */
  switchLog?: string
  exec?: ExecFunc
}

const log = logger('ovs')

/** An ovs-vsctl client bound to one database; every call passes the Op choke point. */
export class Vsctl {
  readonly db: string | undefined
  readonly timeoutSec: number
  private readonly noWait: boolean
  private readonly switchLog: string | undefined
  private readonly execFn: ExecFunc

  constructor(o: VsctlOptions = {}) {
    this.db = o.db
    this.timeoutSec = parseIntIn(o.timeoutSec ?? 5, 1, 3600, 'ovs-vsctl timeout')
    this.noWait = o.noWait ?? false
    this.switchLog = o.switchLog
    this.execFn = o.exec ?? execProgram
  }

  /** Options that precede every command: `--db=...`, `--timeout=N`, `--no-wait`. */
  get globals(): string[] {
    return [
      ...(this.db ? [`--db=${this.db}`] : []),
      `--timeout=${this.timeoutSec}`,
      ...(this.noWait ? ['--no-wait'] : []),
    ]
  }

  /** Run commands as one ovs-vsctl call (one OVSDB transaction); resolves to its stdout. */
  async run(commands: readonly VsctlCommand[]): Promise<string> {
    if (commands.length === 0) return ''
    const argv = [...this.globals, ...commands.flatMap((c, i) => (i ? ['--', ...c] : c))]
    return runOp({ kind: 'ovs.vsctl', argv }, () => this.exec(argv), '')
  }

  /** A read: runs under --dry-run and stays out of --explain. */
  private read(options: readonly string[], command: VsctlCommand): Promise<string> {
    const argv = [...this.globals, ...options, ...command]
    return runOp({ kind: 'ovs.vsctl.show', argv }, () => this.exec(argv), '')
  }

  private async exec(argv: string[]): Promise<string> {
    const r = await this.execFn('ovs-vsctl', argv, (this.timeoutSec + 5) * 1000)
    if (r.exitCode === 0) {
      const failed = this.setupError(argv, r)
      if (failed) throw failed
      if (r.stderr.trim()) log.warn({ argv, stderr: r.stderr.trim() }, 'ovs-vsctl warned')
      return r.stdout
    }
    throw this.error(argv, r)
  }

  /**
   * ovs-vsctl commits the change and exits 0 even when ovs-vswitchd then fails to set up a
   * bridge or port; it only says so on stderr. That is a failure: the bridge does not work.
   */
  private setupError(argv: string[], r: ExecResult): ExecError | undefined {
    const m = /Error detected while setting up '([^']*)'(?:: (.*?))?\.\s+See ovs-vswitchd log/.exec(
      r.stderr,
    )
    if (!m) return undefined
    const full = ['ovs-vsctl', ...argv]
    const why = m[2] ? `: ${m[2]}` : ''
    return new ExecError(`ovs-vswitchd could not set up "${m[1]}"${why}`, full, 0, r.stderr, {
      code: 'E_EXEC',
      details: quoteArgv(full),
      hint: `see ${this.switchLog ?? 'the ovs-vswitchd log'}`,
    })
  }

  /** Turn a failed run into an ExecError with a code callers can branch on. */
  private error(argv: string[], r: ExecResult): ExecError {
    const full = ['ovs-vsctl', ...argv]
    const details = quoteArgv(full)
    const fail = (code: ErrorCode, message: string, hint?: string): ExecError => {
      const opts = { code, details, ...(hint ? { hint } : {}) }
      return new ExecError(message, full, r.exitCode, r.stderr, opts)
    }
    if (r.spawnError === 'ENOENT')
      return fail('E_UNAVAILABLE', 'ovs-vsctl is not installed (Open vSwitch)', HINT_INSTALL)
    if (r.spawnError) return fail('E_EXEC', `cannot run ovs-vsctl: ${r.spawnError}`)
    const where = this.db ?? 'the default socket'
    const msg = lastMessage(r.stderr)
    const refused = /database connection failed \(([^)]*)\)/.exec(r.stderr)
    if (refused)
      return fail('E_UNAVAILABLE', `no OVS database answers at ${where}: ${refused[1]}`, HINT_START)
    if (r.timedOut || r.signal === 'SIGALRM')
      return fail(
        'E_UNAVAILABLE',
        `ovs-vsctl: no answer within ${this.timeoutSec} s from ${where} (is ovs-vswitchd running?)`,
        HINT_START,
      )
    const text = `ovs-vsctl: ${msg || `failed (${r.signal ?? `exit ${r.exitCode}`})`}`
    if (/\bno (bridge|port|interface|row)\b/i.test(msg)) return fail('E_NOT_FOUND', text)
    if (/already exists/.test(msg)) return fail('E_EXISTS', text)
    return fail('E_EXEC', text)
  }

  /** Equivalent: `ovs-vsctl --may-exist add-br BR [-- set Bridge BR datapath_type=T]`. */
  async addBr(name: string, o: { datapathType?: DatapathType } = {}): Promise<string> {
    return this.run(cmd.addBr(name, o))
  }

  /** Equivalent: `ovs-vsctl --if-exists del-br BR`. */
  async delBr(name: string): Promise<string> {
    return this.run(cmd.delBr(name))
  }

  /** Equivalent: `ovs-vsctl --may-exist add-port BR P -- set Port P ... -- set Interface P ...`. */
  async addPort(br: string, port: string, o: PortOpts = {}): Promise<string> {
    return this.run(cmd.addPort(br, port, o))
  }

  /** Equivalent: `ovs-vsctl --if-exists del-port [BR] P`. */
  async delPort(port: string, br?: string): Promise<string> {
    return this.run(cmd.delPort(port, br))
  }

  /** Equivalent: `ovs-vsctl set Port P tag=T` (or `clear Port P tag`). */
  async setPortTag(port: string, tag: number | null): Promise<string> {
    return this.run(cmd.setPortTag(port, tag))
  }

  /** Equivalent: `ovs-vsctl set Port P trunks=A,B` (or `clear Port P trunks`). */
  async setTrunks(port: string, trunks: readonly number[]): Promise<string> {
    return this.run(cmd.setTrunks(port, trunks))
  }

  /** Bridge names. Equivalent: `ovs-vsctl list-br`. */
  async listBr(): Promise<string[]> {
    return lines(await this.read([], ['list-br']))
  }

  /** Port names of a bridge (E_NOT_FOUND when it does not exist). Equivalent: `list-ports BR`. */
  async listPorts(br: string): Promise<string[]> {
    return lines(await this.read([], ['list-ports', ovsName(br, 'bridge name')]))
  }

  /** The bridge a port is on, or undefined. Equivalent: `ovs-vsctl port-to-br P`. */
  async portToBr(port: string): Promise<string | undefined> {
    try {
      return lines(await this.read([], ['port-to-br', ovsName(port, 'port name')]))[0]
    } catch (err) {
      if (isCode(err, 'E_NOT_FOUND')) return undefined
      throw err
    }
  }

  /**
   * Rows of a table (all, or the named records; missing records are skipped).
   * Equivalent: `ovs-vsctl --format=json [--columns=A,B] --if-exists list TABLE [RECORD...]`.
   */
  async listRows(
    table: string,
    o: { records?: readonly string[]; columns?: readonly string[] } = {},
  ): Promise<OvsRow[]> {
    const options = ['--format=json', ...columnsOpt(o.columns)]
    const command = ['--if-exists', 'list', tableName(table), ...(o.records ?? [])]
    return parseOvsTable(await this.read(options, command))
  }

  /**
   * Rows matching every condition (`name=v1`, `tag=100`).
   * Equivalent: `ovs-vsctl --format=json [--columns=A,B] find TABLE COND...`.
   */
  async findRows(
    table: string,
    conditions: readonly string[],
    columns?: readonly string[],
  ): Promise<OvsRow[]> {
    const options = ['--format=json', ...columnsOpt(columns)]
    return parseOvsTable(await this.read(options, ['find', tableName(table), ...conditions]))
  }

  /** A port's VLAN settings, or undefined when there is no such port. */
  async getPort(name: string): Promise<PortInfo | undefined> {
    ovsName(name, 'port name')
    const [row] = await this.listRows('Port', {
      records: [name],
      columns: ['name', 'tag', 'trunks', 'interfaces'],
    })
    if (!row) return undefined
    const num = (a: OvsAtom): number => {
      if (typeof a !== 'number') throw decodeError(`a non-number VLAN id ${JSON.stringify(a)}`)
      return a
    }
    return {
      name: String(row.name),
      tag: ovsSet(row.tag).map(num)[0],
      trunks: ovsSet(row.trunks).map(num),
      interfaces: ovsSet(row.interfaces).map(keyOf),
    }
  }
}

function tableName(table: string): string {
  if (!/^[A-Za-z_]+$/.test(table))
    throw new ConfigError(`invalid OVSDB table name "${table}"`, 'table', {
      hint: 'e.g. Bridge, Port, Interface, Open_vSwitch',
    })
  return table
}

function columnsOpt(columns: readonly string[] | undefined): string[] {
  if (!columns?.length) return []
  for (const c of columns)
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(c))
      throw new ConfigError(`invalid OVSDB column name "${c}"`, 'columns')
  return [`--columns=${columns.join(',')}`]
}

const lines = (out: string): string[] => out.split('\n').filter((l) => l !== '')

/** The error line ovs-vsctl printed, without its "ovs-vsctl: " prefix. */
function lastMessage(stderr: string): string {
  const all = lines(stderr.trim())
  const own = all.filter((l) => l.startsWith('ovs-vsctl: '))
  return (own.at(-1) ?? all.at(-1) ?? '').replace(/^ovs-vsctl: /, '')
}
