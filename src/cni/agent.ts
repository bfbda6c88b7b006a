/**
 * The resident half of the thick-plugin pattern: `nsdn cni agent` answers the calls the
 * installed shims (shim/shim.c) forward on a unix socket, with the plugin code a Node plugin
 * process would run (skel.runPlugin), but with Node started, the code loaded and the host's
 * netlink socket open already. A call the agent cannot serve as the shim's own process would
 * is declined (status 255) before anything is done, and the shim runs it in a Node process:
 * one from another network namespace, or whose CNI_NETNS path names another namespace here
 * (the agent in a pod sees the host's /var/run/netns and /proc only through its mounts).
 * @module
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { NsdnError, errorMessage } from '../errors.js'
import { logger } from '../log.js'
import { NetNs } from '../netns/netns.js'
import { opMode } from '../op.js'
import { loadPlugin } from './plugins.js'
import { type Env, concurrentCalls, runPlugin } from './skel.js'
import { errorJson } from './spec.js'

const log = logger('cni.agent')

export const DEFAULT_SOCKET = '/run/nsdn/cni.sock'

export function agentSocket(): string {
  return process.env.NSDN_CNI_SOCKET || DEFAULT_SOCKET
}

/** The status that tells the shim to run the call itself. */
export const DECLINED = 255

/** One forwarded call's explain flag and its stderr lines. */
const callOut = new AsyncLocalStorage<{ explain: boolean; stderr: string[] }>()

/**
 * Explain lines belong to the call that caused them, not to the agent's own stderr: the
 * choke point's switches read the current call.
 */
function routeExplainPerCall(): void {
  Object.defineProperty(opMode, 'explain', {
    get: () => callOut.getStore()?.explain ?? false,
    configurable: true,
  })
  const write = opMode.write
  opMode.write = (line) => {
    const c = callOut.getStore()
    if (c) c.stderr.push(line + '\n')
    else write(line)
  }
}

/** Split a request: environment block, then stdin. */
export function decodeRequest(buf: Buffer): { env: Record<string, string>; stdin: Buffer } {
  if (buf.length < 4) throw new NsdnError('E_DECODE', 'short request')
  const n = buf.readUInt32LE(0)
  if (4 + n > buf.length) throw new NsdnError('E_DECODE', 'truncated environment block')
  const env: Record<string, string> = {}
  for (const kv of buf
    .subarray(4, 4 + n)
    .toString('utf8')
    .split('\0')) {
    const eq = kv.indexOf('=')
    if (eq > 0) env[kv.slice(0, eq)] = kv.slice(eq + 1)
  }
  return { env, stdin: buf.subarray(4 + n) }
}

export function encodeReply(status: number, stdout: string, stderr: string): Buffer {
  const out = Buffer.from(stdout)
  const head = Buffer.alloc(5)
  head.writeUInt8(status, 0)
  head.writeUInt32LE(out.length, 1)
  return Buffer.concat([head, out, Buffer.from(stderr)])
}

/** CNI_NETNS names here the namespace it names for the shim (when the shim could stat it). */
function sameTarget(env: Record<string, string>): boolean {
  if (!env.CNI_NETNS || env.NSDN_TARGET_ID === undefined) return true
  try {
    const st = fs.statSync(env.CNI_NETNS)
    return `${st.dev}:${st.ino}` === env.NSDN_TARGET_ID
  } catch {
    return false
  }
}

/** Answer one forwarded call. */
export async function serveCall(buf: Buffer, self: { net: string }): Promise<Buffer> {
  concurrentCalls()
  const { env, stdin } = decodeRequest(buf)
  if (env.NSDN_NETNS_ID !== self.net || !sameTarget(env)) return encodeReply(DECLINED, '', '')
  const type = env.NSDN_PLUGIN ?? ''
  const plugin = await loadPlugin(type)
  if (!plugin) return encodeReply(DECLINED, '', '')
  log.info({ type, command: env.CNI_COMMAND, containerId: env.CNI_CONTAINERID }, 'call')
  const out = { explain: env.NSDN_EXPLAIN === '1', stderr: [] as string[] }
  const reply = await callOut.run(out, () => runPlugin(plugin, env as Env, stdin))
  return encodeReply(reply.exitCode, reply.stdout ? reply.stdout + '\n' : '', out.stderr.join(''))
}

/** Listen on `socketPath` until the process is told to stop; resolves when it has stopped. */
export async function runAgent(socketPath = agentSocket()): Promise<void> {
  routeExplainPerCall()
  const self = { net: NetNs.current().id }
  fs.mkdirSync(path.dirname(socketPath), { recursive: true })
  fs.rmSync(socketPath, { force: true }) // a stale socket of a dead agent
  // allowHalfOpen: the shim shuts its write side after stdin; the reply goes the other way.
  const conns = new Set<net.Socket>()
  const server = net.createServer({ allowHalfOpen: true }, (conn) => {
    conns.add(conn)
    conn.on('close', () => conns.delete(conn))
    const chunks: Buffer[] = []
    conn.on('data', (b: Buffer) => chunks.push(b))
    conn.on('error', (err) => log.warn({ err: errorMessage(err) }, 'connection'))
    conn.on('end', () => {
      serveCall(Buffer.concat(chunks), self)
        .catch((err: unknown) =>
          encodeReply(1, JSON.stringify(errorJson(err, undefined)) + '\n', ''),
        )
        .then((reply) => conn.end(reply))
        .catch(() => undefined)
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(socketPath, () => resolve())
  })
  log.info({ socketPath }, 'agent listening')
  await new Promise<void>((resolve) => {
    // Stop taking calls; a call still running loses its connection (its shim reports it).
    const stop = (): void => {
      server.close()
      for (const c of conns) c.destroy()
      fs.rmSync(socketPath, { force: true })
      resolve()
    }
    process.once('SIGTERM', stop)
    process.once('SIGINT', stop)
  })
}
