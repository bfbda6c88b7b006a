/**
 * One error class tree with stable codes, and one table that maps every code to a process exit
 * status (sysexits.h) and a CNI error code (SPEC: 0-99 reserved, 100+ plugin-specific).
 * @module
 */

export const ERROR_TABLE = {
  E_CONFIG: { cni: 7, exit: 78 }, // EX_CONFIG: invalid network config / bad user input
  E_UNSUPPORTED_FIELD: { cni: 2, exit: 78 },
  E_CNI_VERSION: { cni: 1, exit: 78 },
  E_CNI_ENV: { cni: 4, exit: 64 }, // EX_USAGE
  E_USAGE: { cni: 4, exit: 64 },
  E_DECODE: { cni: 6, exit: 65 }, // EX_DATAERR
  E_NETNS: { cni: 8, exit: 66 }, // ErrInvalidNetNS in libcni: unknown or unusable netns
  E_TRY_AGAIN: { cni: 11, exit: 75 }, // EX_TEMPFAIL
  E_UNKNOWN_CONTAINER: { cni: 3, exit: 1 }, // CNI: the runtime knows no such attachment
  E_IO: { cni: 5, exit: 74 }, // EX_IOERR: reading stdin, writing a cache file
  E_UNAVAILABLE: { cni: 50, exit: 69 }, // EX_UNAVAILABLE: daemon down, package missing
  E_KERNEL_FEATURE: { cni: 50, exit: 69 }, // the running kernel lacks an option
  E_KERNEL: { cni: 100, exit: 71 }, // EX_OSERR: any other errno
  E_NOT_FOUND: { cni: 101, exit: 1 },
  E_EXISTS: { cni: 102, exit: 1 },
  E_PERM: { cni: 103, exit: 77 }, // EX_NOPERM
  E_EXEC: { cni: 104, exit: 1 },
  E_IPAM_EXHAUSTED: { cni: 110, exit: 1 }, // no free address left in a range set
  E_INTERNAL: { cni: 999, exit: 70 }, // EX_SOFTWARE
} as const satisfies Record<string, { cni: number; exit: number }>

export type ErrorCode = keyof typeof ERROR_TABLE

export interface ErrorOpts {
  cause?: unknown
  details?: string
  /** How to fix it, one line. */
  hint?: string
}

/** Base of every error nsdn throws on purpose. */
export class NsdnError extends Error {
  readonly hint: string | undefined
  readonly details: string | undefined
  constructor(
    readonly code: ErrorCode,
    message: string,
    opts: ErrorOpts = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause })
    this.name = new.target.name
    this.hint = opts.hint
    this.details = opts.details
  }
}

/** Bad input: a name, a number, a config field. `where` says which (file:line, field path). */
export class ConfigError extends NsdnError {
  constructor(
    message: string,
    readonly where?: string,
    opts: ErrorOpts = {},
  ) {
    super('E_CONFIG', where ? `${where}: ${message}` : message, opts)
  }
}

/** A kernel request failed: `errno` is its symbolic name (EEXIST), `command` the ip equivalent. */
export class KernelError extends NsdnError {
  constructor(
    code: ErrorCode,
    message: string,
    readonly errno: string,
    readonly command: string | undefined,
    opts: ErrorOpts = {},
  ) {
    super(code, message, opts)
  }
}

/** An external program (ovs-vsctl, ovsdb-server) failed. */
export class ExecError extends NsdnError {
  constructor(
    message: string,
    readonly argv: readonly string[],
    readonly exitCode: number | null,
    readonly stderr: string,
    opts: ErrorOpts & { code?: ErrorCode } = {},
  ) {
    super(opts.code ?? 'E_EXEC', message, opts)
  }
}

/** The running kernel lacks a feature; names the option and an alternative. */
export class KernelFeatureError extends NsdnError {
  constructor(
    readonly feature: string,
    readonly kconfig: string,
    alternative: string,
  ) {
    super('E_KERNEL_FEATURE', `this kernel lacks ${feature} (${kconfig})`, { hint: alternative })
  }
}

/** Map an errno name to the nsdn code callers branch on. */
export function codeForErrno(errno: string): ErrorCode {
  switch (errno) {
    case 'EEXIST':
      return 'E_EXISTS'
    case 'ENODEV':
    case 'ENOENT':
    case 'ESRCH':
    case 'EADDRNOTAVAIL':
      return 'E_NOT_FOUND'
    case 'EPERM':
    case 'EACCES':
      return 'E_PERM'
    case 'EBUSY':
    case 'EAGAIN':
    case 'EINTR':
      return 'E_TRY_AGAIN'
    default:
      return 'E_KERNEL'
  }
}

export function isCode(err: unknown, code: ErrorCode): boolean {
  return err instanceof NsdnError && err.code === code
}

/** Await p, treating "it is already gone" as success (del paths are idempotent). */
export async function ignoreNotFound<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p
  } catch (err) {
    if (isCode(err, 'E_NOT_FOUND')) return undefined
    throw err
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
