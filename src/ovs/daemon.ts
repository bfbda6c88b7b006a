/**
 * A private Open vSwitch: ovsdb-server and ovs-vswitchd of nsdn's own, with every file (database,
 * sockets, pidfiles, logs) in one run directory, reached with `ovs-vsctl --db=unix:DIR/db.sock`.
 * Tests and the demo use it, so no system service is needed. Without the openvswitch kernel
 * module (no generic netlink family `ovs_datapath`) bridges must use the userspace datapath,
 * `datapath_type=netdev`.
 *
 * The daemons run as children in a session of their own rather than with `--detach`: a detached
 * daemon is re-parented to PID 1, and in a sandbox PID 1 is node, which never reaps it.
 * @module
 */
import { type ChildProcess, spawn } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { ExecError, NsdnError, errorMessage } from '../errors.js'
import { logger } from '../log.js'
import { mkdirp } from '../files.js'
import { genlFamilyExists } from '../netlink/genl.js'
import { quoteArgv } from '../teach/quote.js'
import {
  type DatapathType,
  HINT_INSTALL,
  Vsctl,
  type VsctlOptions,
  execProgram,
  ovsSet,
} from './vsctl.js'

/** Run directory of the private instance unless NSDN_OVS_RUNDIR or an option says otherwise. */
export const DEFAULT_OVS_RUNDIR = '/run/nsdn/ovs'

/** Which private instance: the one in this run directory. */
export interface OvsDaemonOptions {
  /** Where the instance keeps its files; default $NSDN_OVS_RUNDIR, else /run/nsdn/ovs. */
  runDir?: string
}

/** What `nsdn ovs status` shows. */
export interface OvsStatus {
  runDir: string
  /** Both daemons are alive. */
  running: boolean
  /** The OVSDB remote of the instance, for `ovs-vsctl --db=`. */
  db: string
  pids: { ovsdbServer: number | undefined; ovsVswitchd: number | undefined }
  /** Open vSwitch version reported by the running ovs-vswitchd. */
  version: string | undefined
  /** "system" with the openvswitch kernel module, else "netdev" (userspace). */
  datapath: DatapathType
}

type Daemon = 'ovsdb-server' | 'ovs-vswitchd'

const log = logger('ovs')

/** How long a daemon may take to answer after it is started, or to exit when told to. */
const START_MS = 10_000
const STOP_MS = 5_000

/** The run directory in use: the option, else $NSDN_OVS_RUNDIR, else /run/nsdn/ovs. */
export function ovsRunDir(o: OvsDaemonOptions = {}): string {
  return path.resolve(o.runDir ?? process.env.NSDN_OVS_RUNDIR ?? DEFAULT_OVS_RUNDIR)
}

const dbSock = (dir: string): string => path.join(dir, 'db.sock')

function files(dir: string, d: Daemon): { pid: string; log: string; ctl: string } {
  return {
    pid: path.join(dir, `${d}.pid`),
    log: path.join(dir, `${d}.log`),
    ctl: path.join(dir, `${d}.ctl`),
  }
}

/** The files a private instance creates; stop removes these and nothing else. */
const OWN_FILE = new RegExp(
  '^(conf\\.db|\\.conf\\.db\\.~lock~|db\\.sock|(ovsdb-server|ovs-vswitchd)\\.(pid|log|ctl)' +
    '|.+\\.(mgmt|snoop|lock))$',
)

/** 'system' when the openvswitch kernel module is loaded, else 'netdev' (userspace datapath). */
export async function defaultDatapathType(): Promise<DatapathType> {
  return (await genlFamilyExists('ovs_datapath')) ? 'system' : 'netdev'
}

/** Absolute path of an Open vSwitch program; E_UNAVAILABLE when it is not installed. */
function locate(program: string): string {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin', '/usr/local/sbin']
  for (const dir of dirs) {
    if (!dir) continue
    const file = path.join(dir, program)
    try {
      fs.accessSync(file, fs.constants.X_OK)
      return file
    } catch {
      // not in this directory
    }
  }
  throw new NsdnError('E_UNAVAILABLE', `Open vSwitch is not installed: no "${program}" program`, {
    hint: HINT_INSTALL,
  })
}

function schemaPath(): string {
  const dir = process.env.OVS_PKGDATADIR ?? '/usr/share/openvswitch'
  const file = path.join(dir, 'vswitch.ovsschema')
  if (!fs.existsSync(file))
    throw new NsdnError('E_UNAVAILABLE', `Open vSwitch is not installed: no ${file}`, {
      hint: HINT_INSTALL,
    })
  return file
}

function readPid(file: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(file, 'utf8').trim())
    return Number.isInteger(pid) && pid > 0 ? pid : undefined
  } catch {
    return undefined
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * False when /proc shows that pid runs something else (a stale pidfile, the pid reused).
 * In a sandbox /proc belongs to the outer PID namespace, so it cannot tell: trust the pidfile.
 */
function runs(pid: number, d: Daemon): boolean {
  try {
    if (fs.readlinkSync('/proc/self') !== String(process.pid)) return true
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(d)
  } catch {
    return false
  }
}

/** The pid of a live daemon of the instance in dir, from its pidfile. */
function daemonPid(dir: string, d: Daemon): number | undefined {
  const pid = readPid(files(dir, d).pid)
  return pid !== undefined && alive(pid) && runs(pid, d) ? pid : undefined
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

async function waitFor(ok: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms
  for (;;) {
    if (await ok()) return true
    if (Date.now() >= end) return false
    await sleep(20)
  }
}

/** True when something accepts connections on the unix socket at file. */
function answers(file: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(file)
    s.once('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.once('error', () => resolve(false))
  })
}

function tail(file: string, n = 20): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-n).join('\n')
  } catch {
    return ''
  }
}

/** Run a setup program (ovsdb-tool, ovs-vsctl) to completion. */
async function must(argv: string[]): Promise<void> {
  const [file, ...args] = argv as [string, ...string[]]
  const r = await execProgram(file, args, START_MS)
  if (r.exitCode === 0) return
  const why = r.stderr.trim().split('\n').at(-1) || r.spawnError || `exit ${r.exitCode}`
  throw new ExecError(`${path.basename(file)} failed: ${why}`, argv, r.exitCode, r.stderr, {
    details: quoteArgv(argv),
  })
}

/** Run a setup program and return its stdout, trimmed. */
async function output(argv: string[]): Promise<string> {
  const [file, ...args] = argv as [string, ...string[]]
  const r = await execProgram(file, args, START_MS)
  if (r.exitCode === 0) return r.stdout.trim()
  throw new ExecError(
    `${path.basename(file)} failed: ${r.stderr.trim()}`,
    argv,
    r.exitCode,
    r.stderr,
  )
}

/** Start one daemon as a child in its own session and wait until ready() says it answers. */
async function startDaemon(
  dir: string,
  d: Daemon,
  args: string[],
  ready: () => Promise<boolean>,
): Promise<void> {
  const f = files(dir, d)
  const program = locate(d)
  const opts = [`--pidfile=${f.pid}`, `--log-file=${f.log}`, `--unixctl=${f.ctl}`, '-vconsole:off']
  const argv = [program, ...args, ...opts]
  // stderr goes to the log too: fatal errors at startup are printed there, not logged.
  const errFd = fs.openSync(f.log, 'a')
  let child: ChildProcess
  try {
    child = spawn(program, argv.slice(1), {
      detached: true,
      stdio: ['ignore', 'ignore', errFd],
      cwd: '/',
      // OVS_RUNDIR: ovs-vswitchd puts its per-bridge sockets (BR.mgmt, BR.snoop) there.
      env: { ...process.env, OVS_RUNDIR: dir },
    })
  } finally {
    fs.closeSync(errFd)
  }
  let spawnError: Error | undefined
  child.once('error', (err) => (spawnError = err))
  child.unref()
  const exited = (): boolean =>
    spawnError !== undefined || child.exitCode !== null || child.signalCode !== null
  const ok = await waitFor(async () => exited() || (await ready()), START_MS)
  if (ok && !exited()) return
  if (!ok) child.kill('SIGTERM')
  const how = spawnError
    ? spawnError.message
    : ok
      ? `exited (${child.signalCode ?? `status ${child.exitCode}`})`
      : `did not answer within ${START_MS / 1000} s`
  throw new ExecError(`${d} ${how}`, argv, child.exitCode, '', {
    details: `${quoteArgv(argv)}\n${f.log}:\n${tail(f.log)}`,
    hint: `see ${f.log}`,
  })
}

/** ovs-vswitchd has read the database once it has filled in datapath_types. */
async function vswitchdReady(dir: string): Promise<boolean> {
  if (!(await answers(files(dir, 'ovs-vswitchd').ctl))) return false
  const vs = new Vsctl({ db: `unix:${dbSock(dir)}` })
  try {
    const [row] = await vs.listRows('Open_vSwitch', { columns: ['datapath_types'] })
    return ovsSet(row?.datapath_types).length > 0
  } catch {
    return false
  }
}

/**
 * Start a private Open vSwitch in the run directory, or return the status of the one running
 * there. Equivalent (nsdn keeps the daemons as children instead of `--detach`):
 * `ovsdb-tool create DIR/conf.db /usr/share/openvswitch/vswitch.ovsschema;
 * ovsdb-server --remote=punix:DIR/db.sock --pidfile=... --detach --log-file=... --unixctl=...
 * DIR/conf.db; ovs-vsctl --db=unix:DIR/db.sock --no-wait init;
 * OVS_RUNDIR=DIR ovs-vswitchd unix:DIR/db.sock --pidfile=... --detach --log-file=... --unixctl=...`
 */
export async function ovsStart(o: OvsDaemonOptions = {}): Promise<OvsStatus> {
  const dir = ovsRunDir(o)
  const before = await ovsStatus(o)
  if (before.running) return before
  const tool = locate('ovsdb-tool')
  const vsctl = locate('ovs-vsctl')
  for (const p of ['ovsdb-server', 'ovs-vswitchd', 'ovs-appctl']) locate(p)
  const schema = schemaPath()
  // Whatever a crashed or half-started instance left, but its database: it holds the bridges
  // and ports of live attachments, which come back once ovs-vswitchd reads it again.
  await stopDaemons(dir)
  const t0 = Date.now()
  mkdirp(dir)
  const sock = dbSock(dir)
  const db = path.join(dir, 'conf.db')
  const kept = fs.existsSync(db)
  try {
    if (!kept) await must([tool, 'create', db, schema])
    else if ((await output([tool, 'needs-conversion', db, schema])) === 'yes')
      await must([tool, 'convert', db, schema])
    await startDaemon(dir, 'ovsdb-server', [`--remote=punix:${sock}`, db], () => answers(sock))
    await must([vsctl, `--db=unix:${sock}`, '--timeout=5', '--no-wait', 'init'])
    await startDaemon(dir, 'ovs-vswitchd', [`unix:${sock}`], () => vswitchdReady(dir))
  } catch (err) {
    await ovsStop(o).catch((e: unknown) => log.warn({ err: errorMessage(e) }, 'cleanup failed'))
    throw err
  }
  log.info({ runDir: dir, ms: Date.now() - t0, keptDatabase: kept }, 'private Open vSwitch started')
  return ovsStatus(o)
}

/** Tell a daemon to exit; SIGTERM if it does not listen, SIGKILL if it does not go. */
async function stopDaemon(dir: string, d: Daemon, exitArgs: string[]): Promise<void> {
  const f = files(dir, d)
  const pid = daemonPid(dir, d)
  if (pid === undefined) return
  // The daemon removes its pidfile on the way out; as a zombie it would stay "alive".
  const gone = (): boolean => !alive(pid) || !fs.existsSync(f.pid)
  const r = await execProgram(locate('ovs-appctl'), ['-t', f.ctl, ...exitArgs], STOP_MS)
  if (r.exitCode !== 0) {
    log.warn({ daemon: d, pid, stderr: r.stderr.trim() }, 'ovs-appctl exit failed: SIGTERM')
    process.kill(pid, 'SIGTERM')
  }
  if (await waitFor(gone, STOP_MS)) return
  log.warn({ daemon: d, pid }, 'daemon ignored exit: SIGKILL')
  process.kill(pid, 'SIGKILL')
  await waitFor(() => !alive(pid), STOP_MS)
}

async function stopDaemons(dir: string): Promise<void> {
  await stopDaemon(dir, 'ovs-vswitchd', ['exit', '--cleanup'])
  await stopDaemon(dir, 'ovsdb-server', ['exit'])
}

/**
 * Stop the private Open vSwitch and remove its run directory; nothing to do when none runs.
 * `--cleanup` makes ovs-vswitchd delete the datapath and ports it created.
 * Equivalent: `ovs-appctl -t DIR/ovs-vswitchd.ctl exit --cleanup;
 * ovs-appctl -t DIR/ovsdb-server.ctl exit; rm -r DIR`
 */
export async function ovsStop(o: OvsDaemonOptions = {}): Promise<void> {
  const dir = ovsRunDir(o)
  if (!fs.existsSync(dir)) return
  await stopDaemons(dir)
  const left: string[] = []
  for (const name of fs.readdirSync(dir)) {
    if (OWN_FILE.test(name)) fs.rmSync(path.join(dir, name), { force: true })
    else left.push(name)
  }
  if (left.length) log.warn({ runDir: dir, left }, 'run directory holds files of others: kept')
  else fs.rmdirSync(dir)
}

/** Whether the private instance runs, its pids, version and the datapath bridges should use. */
export async function ovsStatus(o: OvsDaemonOptions = {}): Promise<OvsStatus> {
  const dir = ovsRunDir(o)
  const ovsdbServer = daemonPid(dir, 'ovsdb-server')
  const ovsVswitchd = daemonPid(dir, 'ovs-vswitchd')
  const running = ovsdbServer !== undefined && ovsVswitchd !== undefined
  let version: string | undefined
  if (running) {
    const r = await execProgram(
      locate('ovs-appctl'),
      ['-t', files(dir, 'ovs-vswitchd').ctl, 'version'],
      STOP_MS,
    )
    version = /\(Open vSwitch\) (\S+)/.exec(r.stdout)?.[1]
  }
  return {
    runDir: dir,
    running,
    db: `unix:${dbSock(dir)}`,
    pids: { ovsdbServer, ovsVswitchd },
    version,
    datapath: await defaultDatapathType(),
  }
}

/** Set to an OVSDB remote (unix:/var/run/openvswitch/db.sock) to use that Open vSwitch instead. */
export const OVS_DB_ENV = 'NSDN_OVS_DB'

/**
 * An ovs-vsctl client that always names its database: $NSDN_OVS_DB when set, else the private
 * instance's. It never falls back to the system's default socket: a change meant for the
 * private switch must not land in a production one. E_UNAVAILABLE when the private instance's
 * ovsdb-server does not run.
 */
export function ovsClient(o: OvsDaemonOptions & Omit<VsctlOptions, 'db'> = {}): Vsctl {
  const { runDir: _, ...rest } = o
  const db = process.env[OVS_DB_ENV]
  if (db) return new Vsctl({ ...rest, db })
  const dir = ovsRunDir(o)
  if (daemonPid(dir, 'ovsdb-server') === undefined)
    throw new NsdnError('E_UNAVAILABLE', `the private Open vSwitch in ${dir} is not running`, {
      hint: `start it with "nsdn ovs start" (or set ${OVS_DB_ENV} to another OVSDB remote)`,
    })
  return new Vsctl({
    switchLog: files(dir, 'ovs-vswitchd').log,
    ...rest,
    db: `unix:${dbSock(dir)}`,
  })
}

/**
 * Whether the switch (ovs-vswitchd) runs: without it OVSDB takes changes that nothing applies.
 * With $NSDN_OVS_DB nsdn cannot tell, and trusts ovs-vsctl's own timeout.
 */
export function switchRunning(o: OvsDaemonOptions = {}): boolean {
  return !!process.env[OVS_DB_ENV] || daemonPid(ovsRunDir(o), 'ovs-vswitchd') !== undefined
}

/** E_UNAVAILABLE unless the switch runs: what attach checks before it changes anything. */
export function requireSwitch(o: OvsDaemonOptions = {}): void {
  if (!switchRunning(o))
    throw new NsdnError(
      'E_UNAVAILABLE',
      `ovs-vswitchd of the private Open vSwitch in ${ovsRunDir(o)} is not running (the switch is down)`,
      { hint: 'start it again with "nsdn ovs start": bridges and ports are kept' },
    )
}

/** The log of the instance's ovs-vswitchd, where it says why a bridge or port failed. */
export function switchLog(o: OvsDaemonOptions = {}): string {
  return files(ovsRunDir(o), 'ovs-vswitchd').log
}
