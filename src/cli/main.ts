/**
 * Entry point of the `nsdn` command (bin/nsdn): parse, run, and send any failure through the
 * one error boundary. The program itself is built in program.ts.
 * @module
 */
import { fastPath } from './fast.js'

async function main(argv: readonly string[]): Promise<void> {
  // loaded here, not at the top: the fast path (exec, --version) must not pay for them
  const { Rtnl } = await import('../netlink/rtnl.js')
  const { handleError } = await import('./errors.js')
  const { buildProgram } = await import('./program.js')
  const program = buildProgram(argv)
  try {
    await program.parseAsync(argv, { from: 'user' })
  } catch (err) {
    Rtnl.closeAll()
    handleError(err, { json: program.opts().json === true })
    return
  }
  // The sockets would not hold the process open, but a closed socket also frees its netns.
  Rtnl.closeAll()
}

if (!fastPath(process.argv.slice(2))) void main(process.argv.slice(2))
