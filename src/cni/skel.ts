/**
 * The plugin side of CNI: one call (environment + config on stdin) in, one reply (stdout +
 * exit status) out. `runPlugin` is pure of the process, so the Node plugin process (main.ts)
 * and the resident agent (agent.ts) answer through the same code. stdout carries only the
 * Result or the error JSON; logs and NSDN_EXPLAIN=1 steps go to stderr.
 * @module
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import type { CniResult } from '../drivers/api.js'
import { NsdnError, errorMessage } from '../errors.js'
import { validIfName } from '../validate.js'
import {
  COMMANDS,
  type CniCommand,
  compareVersions,
  errorJson,
  isSupported,
  minVersionFor,
  readResult,
  versionInfo,
  writeResult,
} from './spec.js'

export type Env = Readonly<Record<string, string | undefined>>
export type Json = Record<string, unknown>

/** One plugin call, decoded and checked. */
export interface Invocation {
  command: Exclude<CniCommand, 'VERSION'>
  /** CNI_CONTAINERID; '' for STATUS and GC. */
  containerId: string
  /** CNI_NETNS: any path of a netns file (/proc/PID/ns/net, a bind mount); DEL may lack it. */
  netns: string | undefined
  /** CNI_IFNAME; '' for STATUS and GC. */
  ifname: string
  /** CNI_ARGS, "K=V;K=V". */
  args: ReadonlyMap<string, string>
  /** CNI_PATH, the directories plugins are looked up in (for delegated IPAM). */
  path: string[]
  /** The network config from stdin. */
  conf: Json
  /** stdin as it came: delegated plugins get these bytes unchanged, as libcni's DelegateAdd. */
  stdin: Buffer
  cniVersion: string
  /** conf.prevResult in the 1.x shape, when present. */
  prevResult: CniResult | undefined
  env: Env
}

/** A CNI plugin: what each verb does. ADD returns the Result, written in the config's version. */
export interface CniPlugin {
  add(inv: Invocation): Promise<CniResult>
  del(inv: Invocation): Promise<void>
  check(inv: Invocation): Promise<void>
  status(inv: Invocation): Promise<void>
  gc(inv: Invocation): Promise<void>
}

export interface Reply {
  stdout: string
  exitCode: number
}

let only: Invocation | undefined
let concurrent: AsyncLocalStorage<Invocation> | undefined

/**
 * The call being served: delegated IPAM execs with its environment and stdin. A plugin
 * process serves one call at a time, so a variable holds it; the agent serves many at once and
 * switches to AsyncLocalStorage (`concurrentCalls`), which in Node 20 hooks every promise of
 * the process (the Node fallback has no use for that cost).
 */
export const currentCall = {
  async run<T>(inv: Invocation, fn: () => Promise<T>): Promise<T> {
    if (concurrent) return concurrent.run(inv, fn)
    const outer = only
    only = inv
    try {
      return await fn()
    } finally {
      only = outer
    }
  },
  getStore(): Invocation | undefined {
    return concurrent ? concurrent.getStore() : only
  },
}

/** Calls may overlap from now on (the agent): each sees its own. */
export function concurrentCalls(): void {
  concurrent ??= new AsyncLocalStorage<Invocation>()
}

const envError = (msg: string, hint: string): NsdnError => new NsdnError('E_CNI_ENV', msg, { hint })

/** Which CNI_* variables each verb needs (SPEC, "Parameters"). */
const REQUIRED: Record<CniCommand, readonly string[]> = {
  ADD: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'],
  CHECK: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'],
  DEL: ['CNI_CONTAINERID', 'CNI_IFNAME', 'CNI_PATH'],
  STATUS: ['CNI_PATH'],
  GC: ['CNI_PATH'],
  VERSION: [],
}

/** "K=V;K=V" as a map; a pair without "=" is an environment error. */
export function parseCniArgs(text: string | undefined): Map<string, string> {
  const m = new Map<string, string>()
  for (const part of (text ?? '').split(';')) {
    if (!part) continue
    const eq = part.indexOf('=')
    if (eq <= 0) throw envError(`CNI_ARGS: "${part}" is not KEY=VALUE`, 'CNI_ARGS="K1=V1;K2=V2"')
    m.set(part.slice(0, eq), part.slice(eq + 1))
  }
  return m
}

function decodeConf(stdin: Buffer): Json {
  let v: unknown
  try {
    v = JSON.parse(stdin.toString('utf8'))
  } catch (err) {
    throw new NsdnError('E_DECODE', `the network config on stdin is not JSON: ${errorMessage(err)}`)
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new NsdnError('E_DECODE', 'the network config on stdin must be a JSON object')
  return v as Json
}

/** Check the environment and config of a call; throws with the spec's code. */
export function decode(env: Env, stdin: Buffer, conf: Json): Invocation {
  const command = env.CNI_COMMAND as CniCommand
  const cniVersion = conf.cniVersion
  if (typeof cniVersion !== 'string' || !isSupported(cniVersion))
    throw new NsdnError(
      'E_CNI_VERSION',
      `cniVersion ${JSON.stringify(cniVersion ?? null)} is not supported`,
      { details: `supported: ${versionInfo().supportedVersions.join(', ')}` },
    )
  const min = minVersionFor(command)
  if (min && compareVersions(cniVersion, min) < 0)
    throw new NsdnError('E_CNI_VERSION', `${command} needs cniVersion ${min} or later`, {
      details: `the config has ${cniVersion}`,
    })
  for (const k of REQUIRED[command])
    if (!env[k]) throw envError(`${k} is not set`, `a ${command} call needs ${k}`)
  const containerId = env.CNI_CONTAINERID ?? ''
  if (containerId && !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(containerId))
    throw envError(
      `CNI_CONTAINERID "${containerId}" is not valid`,
      'letters, digits, "_", "." and "-", starting with a letter or digit',
    )
  const ifname = env.CNI_IFNAME ?? ''
  if (ifname) {
    try {
      validIfName(ifname, 'CNI_IFNAME')
    } catch (err) {
      throw envError(errorMessage(err), 'at most 15 bytes, no "/", ":" or whitespace')
    }
  }
  if (typeof conf.name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(conf.name))
    throw new NsdnError(
      'E_CONFIG',
      `network name ${JSON.stringify(conf.name ?? null)} is not valid`,
      {
        hint: 'name: letters, digits, "_", "." and "-", starting with a letter or digit',
      },
    )
  const prevResult = conf.prevResult === undefined ? undefined : readResult(conf.prevResult)
  return {
    command: command as Invocation['command'],
    containerId,
    netns: env.CNI_NETNS || undefined,
    ifname,
    args: parseCniArgs(env.CNI_ARGS),
    path: (env.CNI_PATH ?? '').split(':').filter(Boolean),
    conf,
    stdin,
    cniVersion,
    prevResult,
    env,
  }
}

/** Answer one call. Never throws: every failure is error JSON and a non-zero status. */
export async function runPlugin(plugin: CniPlugin, env: Env, stdin: Buffer): Promise<Reply> {
  let version: string | undefined
  try {
    const cmd = env.CNI_COMMAND
    // The config's version, if it can be read, so that even an environment error carries it.
    let conf: Json | undefined
    try {
      conf = stdin.length ? decodeConf(stdin) : undefined
      if (typeof conf?.cniVersion === 'string') version = conf.cniVersion
    } catch (err) {
      if (cmd !== 'VERSION') throw err
    }
    if (!cmd) throw envError('CNI_COMMAND is not set', `set it to one of ${COMMANDS.join(', ')}`)
    if (!(COMMANDS as readonly string[]).includes(cmd))
      throw envError(`CNI_COMMAND "${cmd}" is not a CNI verb`, `one of ${COMMANDS.join(', ')}`)
    if (cmd === 'VERSION') return { stdout: JSON.stringify(versionInfo()), exitCode: 0 }
    if (!conf) throw new NsdnError('E_DECODE', 'no network config on stdin')
    const inv = decode(env, stdin, conf)
    return await currentCall.run(inv, async () => {
      switch (inv.command) {
        case 'ADD':
          return {
            stdout: JSON.stringify(writeResult(await plugin.add(inv), inv.cniVersion)),
            exitCode: 0,
          }
        case 'DEL':
          await plugin.del(inv)
          break
        case 'CHECK':
          await plugin.check(inv)
          break
        case 'STATUS':
          await plugin.status(inv)
          break
        case 'GC':
          await plugin.gc(inv)
          break
      }
      return { stdout: '', exitCode: 0 }
    })
  } catch (err) {
    return { stdout: JSON.stringify(errorJson(err, version)), exitCode: 1 }
  }
}

/** `cni.dev/valid-attachments` of a GC call, as "containerId/ifname" keys. */
export function validAttachments(inv: Invocation): Set<string> {
  const list = inv.conf['cni.dev/valid-attachments']
  if (list === undefined) return new Set()
  if (!Array.isArray(list))
    throw new NsdnError('E_CONFIG', 'cni.dev/valid-attachments must be a list')
  return new Set(
    list.map(
      (a: { containerID?: unknown; ifname?: unknown }) =>
        `${String(a.containerID)}/${String(a.ifname)}`,
    ),
  )
}
