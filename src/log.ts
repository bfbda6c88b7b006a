/**
 * The pino root logger. It writes to fd 2: stdout is reserved for results (--json, CNI).
 * @module
 */
import pino from 'pino'

export const log = pino(
  { level: process.env.NSDN_LOG_LEVEL ?? 'warn', base: null },
  pino.destination({ fd: 2, sync: true }),
)

export function setLogLevel(level: string): void {
  log.level = level
}

/** A child logger for one module, e.g. logger('netlink'). */
export function logger(mod: string): pino.Logger {
  return log.child({ mod })
}
