/**
 * `nsdn exec`: run a command in a running container. nsdn-init's exec mode joins every namespace
 * of the container's init (the user namespace first, which Node, being multithreaded, cannot
 * join), joins its cgroups through cgroup.procs files Node opened for it, and starts the command
 * with the container's capabilities and no_new_privs; with a tty, in a new pty of the container.
 * This module loads only the state file reader: `nsdn exec` is latency.
 * @module
 */
import { spawn } from 'node:child_process'
import type { ChildProcess, StdioOptions } from 'node:child_process'
import fs from 'node:fs'
import { constants } from 'node:os'
import path from 'node:path'
import { NsdnError } from '../errors.js'
import { capMask } from './spec.js'
import { initAlive, initPath, loadState } from './state.js'

export interface ExecOptions {
  /** A new pty in the container, relayed to our terminal (`-t`). */
  tty?: boolean
  cwd?: string
  /** KEY=VALUE added to the container's environment. */
  env?: string[]
  /** stdin, stdout, stderr (default: inherit). */
  stdio?: StdioOptions
  /**
   * With tty: the pty's size, and a pipe after the cgroup fds (the child's last stdio) that
   * takes resize messages, "COLS ROWS\n" (a terminal that is not ours: the web's).
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
  const procs = st.cgroup.dirs.map((d) => fs.openSync(path.join(d, 'cgroup.procs'), 'w'))
  try {
    const args = ['exec', String(st.pid), capMask(st.spec.capabilities), String(procs.length)]
    if (o.tty) args.push('-t')
    if (o.tty && o.size)
      args.push('-s', `${o.size.cols}x${o.size.rows}`, '-C', String(3 + procs.length))
    args.push('-w', o.cwd ?? st.spec.cwd, '--', ...argv)
    const base = (o.stdio ?? 'inherit') as StdioOptions
    const std = Array.isArray(base) ? base.slice(0, 3) : [base, base, base]
    return spawn(initPath(), args, {
      stdio: [...std, ...procs, ...(o.tty && o.size ? ['pipe' as const] : [])] as StdioOptions,
      env: Object.fromEntries(
        [...st.spec.env, ...(o.env ?? [])].map((e) => [
          e.slice(0, e.indexOf('=')),
          e.slice(e.indexOf('=') + 1),
        ]),
      ),
    })
  } finally {
    for (const fd of procs) fs.closeSync(fd)
  }
}

/** Run argv in container `name` to completion; resolves with its exit status. */
export function exec(name: string, argv: readonly string[], o: ExecOptions = {}): Promise<number> {
  const child = spawnExec(name, argv, o)
  return new Promise((resolve, reject) => {
    child.on('error', reject)
    child.on('exit', (code, sig) => resolve(code ?? 128 + (sig ? constants.signals[sig] : 0)))
  })
}
