/**
 * The CLI's one error boundary: whatever a command throws ends here, is printed once for a
 * person (stderr) and, with --json, once for a program (stdout), and becomes the exit status
 * ERROR_TABLE gives its code.
 * @module
 */
import { CommanderError } from 'commander'
import { ERROR_TABLE, KernelError, NsdnError } from '../errors.js'
import { log } from '../log.js'

/** The process exit, behind an object so tests can stub it (oclif's `Exit`). */
export const Exit = {
  exit(code: number): void {
    process.exit(code)
  },
}

export interface BoundaryOptions {
  /** Also print `{"error":{code,message,hint}}` on stdout. */
  json?: boolean
  /** Print the stack of an unexpected error (default: when the log level is debug). */
  stack?: boolean
  stdout?: (text: string) => void
  stderr?: (text: string) => void
}

/** Commander's help and version exits: help already went out, nothing more to say. */
const HELP_CODES = new Set(['commander.helpDisplayed', 'commander.help', 'commander.version'])

const oneLine = (text: string): string => text.replace(/\s*\n\s*/g, ' ').trim()

/** A commander parse failure as E_USAGE; `path` is the command it happened in (`link add`). */
export function usageFromCommander(err: CommanderError, path = ''): NsdnError {
  const message = oneLine(err.message.replace(/^error: /, ''))
  const help = path ? `nsdn ${path} --help` : 'nsdn --help'
  return new NsdnError('E_USAGE', message, { hint: `see "${help}"`, cause: err })
}

function asNsdnError(err: unknown): NsdnError {
  if (err instanceof NsdnError) return err
  if (err instanceof CommanderError) return usageFromCommander(err)
  const hint = 'this is a bug in nsdn; run it again with --log-level debug to see where'
  if (!(err instanceof Error)) return new NsdnError('E_INTERNAL', String(err), { hint })
  return new NsdnError('E_INTERNAL', err.message, { hint, cause: err.cause })
}

/** The `cause` chain below err, messages only; stops at commander's own error (said already). */
function causes(err: Error): string[] {
  const out: string[] = []
  const seen = new Set<unknown>([err])
  let c: unknown = err.cause
  while (c !== undefined && !seen.has(c) && !(c instanceof CommanderError) && out.length < 8) {
    seen.add(c)
    out.push(oneLine(c instanceof Error ? c.message : String(c)))
    c = c instanceof Error ? c.cause : undefined
  }
  return out
}

/**
 * Print err and exit with its status: `nsdn: MESSAGE [CODE]`, then the hint, the `Caused by:`
 * chain, and for a kernel refusal the equivalent command. Anything that is not an NsdnError is
 * a bug: E_INTERNAL (exit 70).
 */
export function handleError(err: unknown, o: BoundaryOptions = {}): void {
  if (err instanceof CommanderError && HELP_CODES.has(err.code)) {
    // `nsdn` or `nsdn link` alone print help to stderr and fail: that is a usage error.
    Exit.exit(err.exitCode === 0 ? 0 : ERROR_TABLE.E_USAGE.exit)
    return
  }
  const stderr = o.stderr ?? ((t: string) => void process.stderr.write(t))
  const stdout = o.stdout ?? ((t: string) => void process.stdout.write(t))
  const e = asNsdnError(err)
  const lines = [`nsdn: ${oneLine(e.message)} [${e.code}]`]
  if (e.hint) lines.push(`  hint: ${e.hint}`)
  if (e.details)
    lines.push(
      ...e.details
        .trimEnd()
        .split('\n')
        .map((l) => `  | ${l}`),
    )
  lines.push(...causes(e).map((c) => `  Caused by: ${c}`))
  if (e instanceof KernelError && e.command && !e.message.includes(e.command))
    lines.push(`  equivalent: ${e.command}`)
  if (e.code === 'E_INTERNAL' && err instanceof Error && (o.stack ?? log.isLevelEnabled('debug')))
    lines.push(String(err.stack))
  stderr(lines.join('\n') + '\n')
  if (o.json) {
    const error = { code: e.code, message: oneLine(e.message), ...(e.hint ? { hint: e.hint } : {}) }
    stdout(JSON.stringify({ error }) + '\n')
  }
  Exit.exit(ERROR_TABLE[e.code].exit)
}
