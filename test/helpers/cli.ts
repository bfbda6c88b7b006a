/**
 * The one way the tests run the real CLI, `node dist/src/cli/main.js ARGS`, as a user would:
 * `nsdn` to completion, `ok` when it must succeed, `nsdnChild` + `ended` for a process the test
 * signals, kills or runs alongside another.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import path from 'node:path'

export const MAIN = path.resolve(__dirname, '../../src/cli/main.js')

export interface Run {
  status: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

export interface RunOptions {
  /** Added to this process's environment. */
  env?: NodeJS.ProcessEnv | undefined
  /** Written to stdin; without it stdin is /dev/null. */
  input?: string | undefined
  /** Commands run before node, e.g. setpriv to run as another user. */
  prefix?: string[] | undefined
  /** Then the CLI is killed (SIGTERM): a hang fails its test instead of stalling the file. */
  timeoutMs?: number | undefined
}

function argv(args: string[], o: RunOptions): [string, string[]] {
  const [cmd, ...rest] = [...(o.prefix ?? []), process.execPath, MAIN, ...args]
  return [cmd!, rest]
}

/** Run the CLI to completion. */
export function nsdn(args: string[], o: RunOptions = {}): Run {
  const [cmd, rest] = argv(args, o)
  const r = spawnSync(cmd, rest, {
    encoding: 'utf8',
    env: { ...process.env, ...o.env },
    input: o.input,
    stdio: [o.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    timeout: o.timeoutMs ?? 300_000, // far longer than any command takes on a loaded machine
  })
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr }
}

/** Run the CLI and fail the test, naming the command, its status and output, unless it exits 0. */
export function ok(args: string[], o: RunOptions = {}): Run {
  const r = nsdn(args, o)
  const how = r.signal ? `was killed by ${r.signal}` : `exited ${r.status}`
  assert.equal(r.status, 0, `nsdn ${args.join(' ')} ${how}:\n${r.stdout}${r.stderr}`)
  return r
}

/** Start the CLI and return the child (stdout and stderr piped, stdin /dev/null). */
export function nsdnChild(
  args: string[],
  o: Omit<RunOptions, 'input' | 'timeoutMs'> = {},
): ChildProcess {
  const [cmd, rest] = argv(args, o)
  return spawn(cmd, rest, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...o.env },
  })
}

/** Wait for a child to end; its status, signal and output. */
export function ended(child: ChildProcess): Promise<Run> {
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (b: Buffer) => (stdout += b.toString()))
  child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()))
  return new Promise((resolve) =>
    child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr })),
  )
}
