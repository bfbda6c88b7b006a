/**
 * CNI plugins invoked exactly as a runtime invokes them: an executable from a CNI bin
 * directory, the CNI_* environment, the config on stdin; stdout parsed as the Result or the
 * error JSON, the exit status kept. Also the resident agent, started and stopped per file.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { after, before } from 'node:test'
import { NetNs } from '../../src/netns/netns.js'
import { installPlugins } from '../../src/cni/install.js'
import { ipamDataDir } from './attach.js'
import * as cli from './cli.js'
import { eventually } from './kernel.js'
import { usePrivateOvs } from './ovs.js'

export const REFERENCE_DIR = '/usr/lib/cni'

/** nsdn's plugins installed into a fresh bin directory on the sandbox's /run. */
export function installBin(socket: string): string {
  const dir = fs.mkdtempSync('/run/nsdn-t-bin-')
  installPlugins(dir, { socket })
  return dir
}

export interface Call {
  command?: string
  containerId?: string
  netns?: string
  ifname?: string
  args?: string
  path?: string
  /** Extra variables (NSDN_EXPLAIN...). */
  env?: Record<string, string>
}

export interface Answer {
  status: number | null
  stdout: string
  stderr: string
  /** stdout parsed; undefined when empty. */
  json: Record<string, unknown> | undefined
}

function envOf(c: Call): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, ...c.env }
  if (c.command !== undefined) env.CNI_COMMAND = c.command
  if (c.containerId !== undefined) env.CNI_CONTAINERID = c.containerId
  if (c.netns !== undefined) env.CNI_NETNS = c.netns
  if (c.ifname !== undefined) env.CNI_IFNAME = c.ifname
  if (c.args !== undefined) env.CNI_ARGS = c.args
  if (c.path !== undefined) env.CNI_PATH = c.path
  return env
}

function answer(status: number | null, stdout: string, stderr: string): Answer {
  let json: Record<string, unknown> | undefined
  if (stdout.trim()) json = JSON.parse(stdout) as Record<string, unknown> // must be JSON only
  return { status, stdout, stderr, json }
}

export function callPlugin(exe: string, c: Call, stdin: unknown): Answer {
  const input = typeof stdin === 'string' ? stdin : JSON.stringify(stdin)
  const r = spawnSync(exe, [], { env: envOf(c), input, encoding: 'utf8', timeout: 60_000 })
  return answer(r.status, r.stdout, r.stderr)
}

export function callPluginAsync(exe: string, c: Call, stdin: unknown): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const child = spawn(exe, [], { env: envOf(c), stdio: ['pipe', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (b: Buffer) => (out += b.toString()))
    child.stderr.on('data', (b: Buffer) => (err += b.toString()))
    child.on('error', reject)
    child.on('close', (code) => resolve(answer(code, out, err)))
    child.stdin.end(JSON.stringify(stdin))
  })
}

/** Assert a successful call and return its JSON (or undefined). */
export function ok(a: Answer, what: string): Record<string, unknown> | undefined {
  assert.equal(a.status, 0, `${what}: exit ${a.status}\nstdout: ${a.stdout}\nstderr: ${a.stderr}`)
  return a.json
}

/** Assert a failed call with the spec's error JSON (cniVersion, code, msg) and return it. */
export function failed(a: Answer, code: number, what: string): Record<string, unknown> {
  assert.notEqual(a.status, 0, `${what}: should fail\nstdout: ${a.stdout}`)
  const j = a.json
  assert.ok(j, `${what}: no error JSON on stdout (stderr: ${a.stderr})`)
  assert.equal(typeof j.cniVersion, 'string', `${what}: error JSON without cniVersion`)
  assert.equal(j.code, code, `${what}: ${a.stdout}`)
  assert.equal(typeof j.msg, 'string')
  return j
}

export interface Agent {
  /** How many calls the agent has served so far (from its info log). */
  served(): number
  stop(): Promise<void>
}

/** `nsdn cni agent` on socket, until stop(). */
export async function startAgent(socket: string): Promise<Agent> {
  // Its log goes to a file, read synchronously: tests call plugins with spawnSync, so a pipe
  // would not be read until they yield.
  const logFile = `${socket}.log`
  const fd = fs.openSync(logFile, 'w')
  const child: ChildProcess = spawn(
    process.execPath,
    [cli.MAIN, 'cni', 'agent', '--socket', socket],
    {
      stdio: ['ignore', 'inherit', fd],
      env: { ...process.env, NSDN_LOG_LEVEL: 'info' },
    },
  )
  fs.closeSync(fd)
  assert.ok(await eventually(() => fs.existsSync(socket), 15_000), 'agent did not start')
  return {
    served: () =>
      fs
        .readFileSync(logFile, 'utf8')
        .split('\n')
        .filter((l) => l.includes('"msg":"call"')).length,
    async stop() {
      const exited = new Promise((r) => child.once('exit', r))
      child.kill('SIGTERM')
      await exited
    },
  }
}

/** `nsdn ARGS...` as a process, its stdout parsed (it must be JSON or nothing). */
export function nsdn(args: string[], env: Record<string, string> = {}): Answer {
  const r = cli.nsdn(args, { env, timeoutMs: 120_000 })
  return answer(r.status, r.stdout, r.stderr)
}

/** The env of a call that must run in Node: no agent listens at this socket. */
export const NO_AGENT = { NSDN_CNI_SOCKET: '/run/nsdn-t-no-agent.sock' }

/** The two ways an installed plugin runs: through the agent, or in Node (no agent there). */
export const MODES = { agent: {}, node: NO_AGENT } as const
export type Mode = keyof typeof MODES

export interface PluginBin {
  bin: string
  /** CNI_PATH: nsdn's plugins, then the reference ones. */
  cniPath: string
  exe(type: string): string
  agent(): Agent
  /** The file's IPAM data directory (swept after each test, with OVS, netns and veths). */
  dataDir: string
  /** A call in this bin (its CNI_PATH) in one of the two modes. */
  call(mode: Mode, c: Call): Call
}

/**
 * What a file of plugin tests shares: nsdn's plugins installed, an agent serving them during
 * its tests, an IPAM data directory and a private OVS (usePrivateOvs: swept after each test,
 * nothing left after the file).
 */
export function usePlugins(): PluginBin {
  const socket = '/run/nsdn-t-agent.sock'
  const bin = installBin(socket)
  const cniPath = `${bin}:${REFERENCE_DIR}`
  let agent: Agent | undefined
  before(async () => {
    agent = await startAgent(socket)
  })
  after(async () => {
    await agent?.stop()
  })
  const dataDir = ipamDataDir()
  usePrivateOvs(dataDir)
  return {
    bin,
    cniPath,
    exe: (type) => path.join(bin, type),
    agent: () => {
      assert.ok(agent, 'the agent runs')
      return agent
    },
    dataDir,
    call: (mode, c) => ({ path: cniPath, ...c, env: { ...MODES[mode], ...c.env } }),
  }
}

let nsSeq = 0

/** A named netns for one test (`nsdn-t-<prefix><n>`), deleted after it. */
export function testNetns(t: { after(fn: () => void): void }, prefix: string): string {
  const name = `nsdn-t-${prefix}${++nsSeq}`
  NetNs.create(name).close()
  t.after(() => {
    if (NetNs.exists(name)) NetNs.delete(name)
  })
  return name
}
