/**
 * A terminal in a lab node: a real pty running the user's login shell inside the node's network
 * namespace (or a container), relayed over pipes by nsdn-init (`nsdn-init pty`, or `exec -t`
 * for a container): Node cannot create a controlling terminal, and no native module is used.
 * The namespace is entered by setns in nsdn-init, never through `ip netns exec`.
 * @module
 */
import { type ChildProcess, spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { Writable } from 'node:stream'
import { NsdnError } from '../errors.js'
import { netnsDir } from '../netns/netns.js'
import { spawnExec } from '../runtime/exec.js'
import { initPath } from '../runtime/state.js'
import { parseIntIn, validNetnsName } from '../validate.js'

/** A namespace by iproute2 name ('' = nsdn's own), or a container of nsdn's runtime. */
export type TerminalTarget = { ns: string } | { container: string }

export interface Terminal {
  write(data: Buffer | string): void
  resize(cols: number, rows: number): void
  onData(fn: (data: Buffer) => void): void
  /** The shell's exit status (128+N when killed by signal N). */
  onExit(fn: (code: number | null) => void): void
  /** Hang up: the shell gets SIGHUP, and is killed outright if it is still there 2 s later. */
  kill(): void
}

const KILL_AFTER_MS = 2000

/** The login shell of the user nsdn runs as (/etc/passwd), when it can be run; else sh. */
export function loginShell(passwd = '/etc/passwd', uid = process.getuid?.() ?? 0): string {
  try {
    for (const line of fs.readFileSync(passwd, 'utf8').split('\n')) {
      const f = line.split(':')
      if (f.length >= 7 && Number(f[2]) === uid) {
        const sh = f[6]!.trim()
        if (sh && path.isAbsolute(sh) && !/nologin|false$/.test(sh)) {
          fs.accessSync(sh, fs.constants.X_OK)
          return sh
        }
      }
    }
  } catch {
    // no passwd entry, or a shell that is not there: sh
  }
  return '/bin/sh'
}

function home(uid = process.getuid?.() ?? 0): string {
  return uid === 0 ? '/root' : (process.env.HOME ?? '/')
}

function size(cols: number, rows: number): { cols: number; rows: number } {
  return {
    cols: parseIntIn(cols, 1, 9999, 'terminal columns'),
    rows: parseIntIn(rows, 1, 9999, 'terminal rows'),
  }
}

/** Open a shell in target on a new pty of cols x rows. */
export function openTerminal(target: TerminalTarget, sz: { cols: number; rows: number }): Terminal {
  const { cols, rows } = size(sz.cols, sz.rows)
  const shell = loginShell()
  const env = {
    PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    TERM: 'xterm-256color',
    HOME: home(),
    SHELL: shell,
    ...(process.env.LANG ? { LANG: process.env.LANG } : {}),
  }
  let child: ChildProcess
  let ctl: Writable
  if ('container' in target) {
    // the container's own sh: its image need not have the host user's shell
    child = spawnExec(target.container, ['/bin/sh'], {
      tty: true,
      size: { cols, rows },
      stdio: ['pipe', 'pipe', 'pipe'],
      env: ['TERM=xterm-256color'],
    })
    ctl = child.stdio[child.stdio.length - 1] as Writable
  } else {
    let nsPath = '-'
    if (target.ns !== '') {
      nsPath = path.join(netnsDir(), validNetnsName(target.ns))
      if (!fs.existsSync(nsPath))
        throw new NsdnError('E_NETNS', `netns "${target.ns}" does not exist`, {
          hint: '"nsdn netns list" shows the existing ones; is the lab deployed?',
        })
    }
    const argv = ['pty', nsPath, `${cols}x${rows}`, '-C', '3', '--', shell, '-l']
    child = spawn(initPath(), argv, { stdio: ['pipe', 'pipe', 'pipe', 'pipe'], env })
    ctl = child.stdio[3] as Writable
  }
  return relay(child, ctl)
}

function relay(child: ChildProcess, ctl: Writable): Terminal {
  let exited = false
  let code: number | null = null
  const exits: ((code: number | null) => void)[] = []
  const ignore = (): void => undefined
  // The shell may be gone when the page writes: EPIPE is no error of the caller's.
  child.stdin!.on('error', ignore)
  ctl.on('error', ignore)
  child.on('error', ignore)
  // 'close': after the last output was read, not only the process's end
  child.on('close', (c, sig) => {
    exited = true
    code = c ?? (sig ? 128 + (os.constants.signals[sig] ?? 0) : null)
    for (const fn of exits) fn(code)
  })
  return {
    write(data) {
      if (!exited) child.stdin!.write(data)
    },
    resize(cols, rows) {
      const s = size(cols, rows)
      if (!exited) ctl.write(`${s.cols} ${s.rows}\n`)
    },
    onData(fn) {
      // nsdn-init's own errors (no such namespace) come on stderr: show them too
      child.stdout!.on('data', fn)
      child.stderr!.on('data', fn)
    },
    onExit(fn) {
      if (exited) fn(code)
      else exits.push(fn)
    },
    kill() {
      if (exited) return
      child.kill('SIGHUP')
      child.stdin!.end()
      setTimeout(() => {
        if (!exited) child.kill('SIGKILL')
      }, KILL_AFTER_MS).unref()
    },
  }
}
