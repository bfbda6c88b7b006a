/**
 * Entry point of the `nsdn` command (bin/nsdn): parse, run, and send any failure through the
 * one error boundary. The program itself is built in program.ts.
 * @module
 */
import { Rtnl } from '../netlink/rtnl.js'
import { handleError } from './errors.js'
import { buildProgram } from './program.js'

async function main(argv: readonly string[]): Promise<void> {
  const program = buildProgram()
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

void main(process.argv.slice(2))
