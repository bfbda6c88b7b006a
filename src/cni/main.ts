/**
 * A plugin process: `node dist/src/cni/main.js TYPE` with the CNI environment and the config
 * on stdin, as the installed plugin (the shim, or its script form) runs it when no agent
 * answers. stdout gets the Result or the error JSON, nothing else; the exit status is 0 or 1.
 * @module
 */
import fs from 'node:fs'
import { Rtnl } from '../netlink/rtnl.js'
import { loadPlugin } from './plugins.js'
import { type Reply, runPlugin } from './skel.js'
import { errorJson } from './spec.js'
import { NsdnError } from '../errors.js'

function readStdin(): Buffer {
  try {
    return fs.readFileSync(0)
  } catch {
    return Buffer.alloc(0) // no stdin (closed): VERSION needs none
  }
}

export async function cniMain(type: string): Promise<void> {
  const stdin = readStdin()
  const plugin = await loadPlugin(type)
  let reply: Reply
  if (!plugin) {
    const err = new NsdnError('E_INTERNAL', `nsdn has no CNI plugin "${type}"`)
    reply = { stdout: JSON.stringify(errorJson(err, undefined)), exitCode: 1 }
  } else reply = await runPlugin(plugin, process.env, stdin)
  Rtnl.closeAll()
  if (reply.stdout) fs.writeSync(1, reply.stdout + '\n')
  process.exitCode = reply.exitCode
}

// Run as a script; the fallback's bundle (fallback.ts) calls cniMain itself.
if (require.main === module) void cniMain(process.argv[2] ?? '')
