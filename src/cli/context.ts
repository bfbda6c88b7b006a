/**
 * What every command group shares: the global options, the mark that a command needs root,
 * the Examples section of its help, and the rtnetlink handle of the namespace `-n` selects.
 * @module
 */
import fs from 'node:fs'
import type { Command } from 'commander'
import { NsdnError } from '../errors.js'
import { Rtnl } from '../netlink/rtnl.js'

/** The options declared on the program, as every command sees them. */
export interface GlobalOpts {
  /** `-n NS`: the named namespace the command works in, as `ip -n`. */
  netns?: string
  explain?: boolean
  dryRun?: boolean
  json?: boolean
  logLevel?: string
}

export function globals(cmd: Command): GlobalOpts {
  return cmd.optsWithGlobals<GlobalOpts>()
}

/** `always`: changes the kernel. `netns`: a read, which needs root only to enter `-n NS`. */
export type RootNeed = 'always' | 'netns'

const rootNeeds = new WeakMap<Command, RootNeed>()

/** Mark cmd as needing root; the program's preAction hook checks it once. */
export function needsRoot(cmd: Command, need: RootNeed = 'always'): Command {
  rootNeeds.set(cmd, need)
  return cmd
}

const CAP_NET_ADMIN = 12

/** CAP_NET_ADMIN in the effective set (root, or a capability-granted user). */
function hasNetAdmin(): boolean {
  try {
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))
    if (m?.[1]) return ((BigInt(`0x${m[1]}`) >> BigInt(CAP_NET_ADMIN)) & 1n) === 1n
  } catch {
    // no /proc: fall back to the uid
  }
  return process.getuid?.() === 0
}

/** Throw E_PERM if cmd needs root here and the process lacks CAP_NET_ADMIN. */
export function checkRoot(cmd: Command): void {
  const need = rootNeeds.get(cmd)
  if (need === undefined || (need === 'netns' && globals(cmd).netns === undefined)) return
  if (!hasNetAdmin())
    throw new NsdnError('E_PERM', 'nsdn needs root (CAP_NET_ADMIN)', { hint: 'run it with sudo' })
}

/** Add an Examples section to cmd's help: each line a command line, `#` lines comments. */
export function examples(cmd: Command, ...lines: string[]): Command {
  const body = lines.map((l) => (l.startsWith('#') ? `  ${l}` : `  $ ${l}`)).join('\n')
  return cmd.addHelpText('after', `\nExamples:\n${body}`)
}

/** The rtnetlink handle of the namespace cmd works in (`-n NS`, or nsdn's own). */
export function handle(cmd: Command): Rtnl {
  return Rtnl.named(globals(cmd).netns)
}
