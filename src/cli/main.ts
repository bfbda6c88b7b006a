/**
 * Entry point of the `nsdn` command (bin/nsdn): parse, run, and send any failure through the
 * one error boundary. The program itself is built in program.ts.
 * @module
 */
import { isVersionRequest, version } from './version.js'

async function main(argv: readonly string[]): Promise<void> {
  if (isVersionRequest(argv)) {
    process.stdout.write(`${version()}\n`)
    return
  }
  // Loaded only now, so that `nsdn --version` starts as fast as Node does.
  const { Rtnl } = require('../netlink/rtnl.js') as typeof import('../netlink/rtnl.js')
  const { handleError } = require('./errors.js') as typeof import('./errors.js')
  const { buildProgram } = require('./program.js') as typeof import('./program.js')
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
