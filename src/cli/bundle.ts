/**
 * The CLI past its fast path (main.ts): what setup bundles into dist/bundle/cli.js
 * (src/bundle.ts), and what runs from dist/ when there is no fresh bundle.
 * @module
 */
import type { Command } from 'commander'

/** Run one command line; resolves with the command that ran, e.g. "lab deploy". */
export async function main(argv: readonly string[]): Promise<string | undefined> {
  // loaded here, not at the top: the fast path (exec, --version) must not pay for them
  const { Rtnl } = await import('../netlink/rtnl.js')
  const { handleError } = await import('./errors.js')
  const { buildProgram } = await import('./program.js')
  const program = buildProgram(argv)
  // A reader that stops early (`nsdn lab explain FILE | head`) ends the command quietly.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e
    process.exit(0)
  })
  let ran: string | undefined
  program.hook('preAction', (_p, action: Command) => {
    const names: string[] = []
    for (let c: Command | null = action; c?.parent; c = c.parent) names.unshift(c.name())
    ran = names.join(' ')
  })
  try {
    await program.parseAsync(argv, { from: 'user' })
  } catch (err) {
    Rtnl.closeAll()
    handleError(err, { json: program.opts().json === true })
    return undefined
  }
  // The sockets would not hold the process open, but a closed socket also frees its netns.
  Rtnl.closeAll()
  return ran
}

/** Setup's warm-up before storing the code cache: every command group's module code. */
export async function warm(): Promise<void> {
  ;(await import('./program.js')).buildProgram()
}
