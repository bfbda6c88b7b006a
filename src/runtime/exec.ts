/**
 * `nsdn exec`: run a command in a running container. nsdn-init's exec mode asks the container's
 * init, over its exec socket, to start the command: init's child is born in every namespace and
 * cgroup of the container, with its capabilities and no_new_privs, so there is no setns and no
 * cgroup migration to pay for. With a tty, init makes a new pty of the container and the helper
 * relays our terminal to it. This module loads only the state file reader: `nsdn exec` is
 * latency.
 * @module
 */
import { spawn } from 'node:child_process'
import type { ChildProcess, StdioOptions } from 'node:child_process'
import { constants } from 'node:os'
import { NsdnError } from '../errors.js'
import { execSocket, initAlive, initPath, loadState } from './state.js'

export interface ExecOptions {
  /** A new pty in the container, relayed to our terminal (`-t`). */
  tty?: boolean
  cwd?: string
  /** KEY=VALUE added to the container's environment. */
  env?: string[]
  /** stdin, stdout, stderr (default: inherit). */
  stdio?: StdioOptions
  /**
   * With tty: the pty's size, and a pipe on the child's fd 3 that takes resize messages,
   * "COLS ROWS\n" (a terminal that is not ours: the web's).
   */
  size?: { cols: number; rows: number }
}

/** Start argv in container `name`; the child's exit is the command's (126/127: cannot run it). */
export function spawnExec(
  name: string,
  argv: readonly string[],
  o: ExecOptions = {},
): ChildProcess {
  if (argv.length === 0)
    throw new NsdnError('E_USAGE', 'exec: no command given', { hint: `nsdn exec ${name} -- CMD` })
  const st = loadState(name)
  if (!initAlive(st))
    throw new NsdnError('E_NOT_FOUND', `container "${name}" is not running`, {
      hint: `start it with "nsdn start ${name}"`,
    })
  const args = ['exec', execSocket(name)]
  if (o.tty) args.push('-t')
  if (o.tty && o.size) args.push('-s', `${o.size.cols}x${o.size.rows}`, '-C', '3')
  args.push('-w', o.cwd ?? st.spec.cwd, '--', ...argv)
  const base = (o.stdio ?? 'inherit') as StdioOptions
  const std = Array.isArray(base) ? base.slice(0, 3) : [base, base, base]
  return spawn(initPath(), args, {
    // fd 3: the resize messages of a terminal with a size (the web page's)
    stdio: [...std, ...(o.tty && o.size ? ['pipe' as const] : [])] as StdioOptions,
    env: Object.fromEntries(
      [...st.spec.env, ...(o.env ?? [])].map((e) => [
        e.slice(0, e.indexOf('=')),
        e.slice(e.indexOf('=') + 1),
      ]),
    ),
  })
}

/** Run argv in container `name` to completion; resolves with its exit status. */
export function exec(name: string, argv: readonly string[], o: ExecOptions = {}): Promise<number> {
  const child = spawnExec(name, argv, o)
  return new Promise((resolve, reject) => {
    child.on('error', reject)
    child.on('exit', (code, sig) => resolve(code ?? 128 + (sig ? constants.signals[sig] : 0)))
  })
}
