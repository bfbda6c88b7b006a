/**
 * `nsdn exec [-t] [-w DIR] [-e K=V] NAME -- CMD...`: shared by the commander command
 * (container.ts) and the fast path of main.ts, which runs it without loading commander, pino or
 * koffi: an exec pays Node's start-up and little more.
 * @module
 */
import { constants } from 'node:os'
import { NsdnError } from '../../errors.js'
import { spawnExec } from '../../runtime/exec.js'

export interface ExecCliOptions {
  tty?: boolean
  workdir?: string
  env?: string[]
}

const FORWARDED = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const

/** Run CMD in the container with our stdio; resolves with its exit status. */
export function runExec(name: string, argv: readonly string[], o: ExecCliOptions): Promise<number> {
  const child = spawnExec(name, argv, {
    ...(o.tty ? { tty: true } : {}),
    ...(o.workdir ? { cwd: o.workdir } : {}),
    ...(o.env ? { env: o.env } : {}),
  })
  // the helper forwards signals to CMD; we only must not die before it
  const forward = (sig: NodeJS.Signals): void => void child.kill(sig)
  for (const s of FORWARDED) process.on(s, forward)
  return new Promise((resolve, reject) => {
    child.on('error', (err) =>
      reject(
        new NsdnError('E_EXEC', `exec: cannot start nsdn-init: ${err.message}`, {
          hint: 'run scripts/setup.sh',
        }),
      ),
    )
    child.on('exit', (code, sig) => {
      for (const s of FORWARDED) process.off(s, forward)
      resolve(code ?? 128 + (sig ? constants.signals[sig] : 0))
    })
  })
}

/**
 * argv after `exec` in the fast path: the flags above, NAME, then CMD (after an optional `--`).
 * Returns undefined for anything else (help, unknown flags): the full CLI handles those.
 */
export function parseExecArgv(
  args: readonly string[],
): { name: string; argv: string[]; opts: ExecCliOptions } | undefined {
  const opts: ExecCliOptions = {}
  let i = 0
  for (; i < args.length; i++) {
    const a = args[i]!
    if (a === '-t' || a === '-it' || a === '-ti' || a === '--tty') opts.tty = true
    else if (a === '-i' || a === '--interactive') continue
    else if ((a === '-w' || a === '--workdir') && i + 1 < args.length) opts.workdir = args[++i]!
    else if ((a === '-e' || a === '--env') && i + 1 < args.length)
      (opts.env ??= []).push(args[++i]!)
    else if (a.startsWith('-')) return undefined
    else break
  }
  const name = args[i]
  let rest = args.slice(i + 1)
  if (rest[0] === '--') rest = rest.slice(1)
  if (!name || rest.length === 0) return undefined
  return { name, argv: rest, opts }
}
