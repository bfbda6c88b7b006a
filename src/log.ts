/**
 * The pino root logger. It writes to fd 2: stdout is reserved for results (--json, CNI).
 * pino itself (about 30 modules, ~40 ms of CPU at start) loads on the first message at an
 * enabled level: most commands and every CNI plugin call log nothing at the default level,
 * and each process start is paid by the user (a CLI call, a plugin exec'd by a runtime).
 * @module
 */
import type pino from 'pino'

const LEVELS: Record<string, number> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
  silent: Infinity,
}

let level = process.env.NSDN_LOG_LEVEL || 'warn'
let root: pino.Logger | undefined

function realRoot(): pino.Logger {
  if (!root) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const p = require('pino') as typeof pino
    root = p({ level, base: null }, p.destination({ fd: 2, sync: true }))
  }
  return root
}

const enabled = (l: string): boolean => (LEVELS[l] ?? 0) >= (LEVELS[level] ?? LEVELS.warn!)
const noop = (): void => undefined

/** A logger that creates its pino logger (root or child with `bindings`) on first real use. */
function lazy(bindings: Record<string, unknown> | undefined): pino.Logger {
  let real: pino.Logger | undefined
  const get = (): pino.Logger => (real ??= bindings ? realRoot().child(bindings) : realRoot())
  return new Proxy({} as pino.Logger, {
    get(_t, prop) {
      if (typeof prop === 'string' && prop in LEVELS && prop !== 'silent' && !enabled(prop))
        return noop
      if (prop === 'level') return level
      if (prop === 'isLevelEnabled') return enabled
      if (prop === 'child') return (b: Record<string, unknown>) => lazy({ ...bindings, ...b })
      const l = get()
      const v = (l as unknown as Record<string | symbol, unknown>)[prop]
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(l) : v
    },
    set(_t, prop, v) {
      if (prop !== 'level') return false
      setLogLevel(String(v))
      return true
    },
  })
}

export const log: pino.Logger = lazy(undefined)

export function setLogLevel(l: string): void {
  level = l
  if (root) root.level = l
}

/** A child logger for one module, e.g. logger('netlink'). */
export function logger(mod: string): pino.Logger {
  return log.child({ mod })
}
