/**
 * A trigger on OVSDB changes: `ovsdb-client --format=json monitor DB Open_vSwitch TABLE COLS`
 * as a child process; each line it prints (the initial contents, then one per transaction) calls
 * onChange. It says only that something changed: the caller reads what it needs itself.
 * The child is restarted, a bounded number of times, if it exits while the watch is open.
 * @module
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { logger } from '../log.js'

const log = logger('ovs')

/** Restarts of a monitor that exits by itself before it is given up. */
const RESTARTS = 5
/** Wait before a restart: the server may be starting again. */
const RESTART_MS = 1000

export interface OvsdbWatch {
  /** Stop the child and wait for it to end. */
  close(): Promise<void>
}

/** Watch columns of a table of the Open_vSwitch database at db ("unix:/run/nsdn/ovs/db.sock"). */
export function watchOvsdb(
  db: string,
  table: string,
  columns: readonly string[],
  onChange: () => void,
): OvsdbWatch {
  const argv = ['--format=json', 'monitor', db, 'Open_vSwitch', table, columns.join(',')]
  let child: ChildProcess | undefined
  let closed = false
  let restarts = 0
  let timer: NodeJS.Timeout | undefined

  const start = (): void => {
    const c = spawn('ovsdb-client', argv, { stdio: ['ignore', 'pipe', 'pipe'] })
    child = c
    let buf = ''
    c.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buf += d
      const lines = buf.split('\n')
      buf = lines.pop()!
      if (!closed && lines.some((l) => l.trim())) onChange()
    })
    let err = ''
    c.stderr!.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-500)))
    // 'error' (not installed) is followed by 'close'
    c.on('error', (e) => (err = e.message))
    c.on('close', (code, signal) => {
      if (child === c) child = undefined
      if (closed) return
      if (restarts >= RESTARTS) {
        log.warn(`ovsdb-client monitor ${db} ended (${code ?? signal}): ${err.trim()}; given up`)
        return
      }
      restarts++
      log.debug(`ovsdb-client monitor ${db} ended (${code ?? signal}): ${err.trim()}; again`)
      timer = setTimeout(start, RESTART_MS)
      timer.unref()
    })
  }
  start()

  return {
    async close(): Promise<void> {
      closed = true
      clearTimeout(timer)
      const c = child
      if (!c || c.exitCode !== null || c.signalCode !== null) return
      const ended = new Promise<void>((r) => c.once('close', () => r()))
      c.kill('SIGTERM')
      await ended
    },
  }
}
