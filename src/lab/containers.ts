/**
 * Container nodes: a lab node that is a container of nsdn's runtime (its own root filesystem,
 * PID namespace and cgroup limits). The runtime names the container's network namespace after
 * the container (/run/netns/NAME), and the container is named as the lab names a host's
 * namespace (LAB-NODE), so the lab's links, addresses and routes go into it exactly as into a
 * host's; two labs never collide. Deploy journals the container before it is made; destroy
 * removes it with force (processes, cgroup, overlay, netns, state), whatever state a killed
 * deploy left it in. The runtime is loaded only when a lab has container nodes.
 * @module
 */
import fs from 'node:fs'
import { ConfigError, NsdnError } from '../errors.js'
import { NetNs } from '../netns/netns.js'
import { type Op, opMode, runOp } from '../op.js'
import type { FieldPath, Loaded, RawContainerFields, RawNode } from './load.js'
import { fieldText } from './load.js'

type RunOp = Extract<Op, { kind: 'container.run' }>

/** What the runtime runs for a container node (its name is the node's netns name). */
export type ContainerNode = Omit<RunOp, 'kind'> & {
  /**
   * `file:line:col field` of its image and of its cpuset, for the preflight's messages (placing
   * costs a parse of the file with positions: done only for a message).
   */
  imageAt: () => string
  cpusetAt: () => string
}

/** The command of a node that names none: waits until stopped (init forwards SIGTERM). */
export const DEFAULT_COMMAND = ['sleep', 'infinity']

/**
 * A container node's container from its fields and the lab's defaults (the node's own win;
 * limits merge per field), validated by the runtime's spec parser; errors name the field.
 */
export function resolveContainer(
  l: Loaded,
  name: string,
  ns: string,
  n: RawNode,
  defaults: RawContainerFields = {},
): ContainerNode {
  const p: FieldPath = ['nodes', name]
  const image = n.image ?? defaults.image
  if (image === undefined)
    throw new ConfigError(`container node "${name}" names no image`, l.at(p), {
      hint: 'add image: NAME (an image imported with "nsdn image import NAME DIR")',
    })
  const cmd = n.command ?? defaults.command
  const command =
    cmd === undefined ? DEFAULT_COMMAND : typeof cmd === 'string' ? ['sh', '-c', cmd] : cmd
  const envOf = (e: RawContainerFields['env']): string[] =>
    e === undefined ? [] : Array.isArray(e) ? e : Object.entries(e).map(([k, v]) => `${k}=${v}`)
  const env = [...envOf(defaults.env), ...envOf(n.env)]
  const limits = { ...defaults.limits, ...n.limits }
  const hostname = n.hostname ?? name
  const where = fieldText(p)
  try {
    // The runtime's own checks, now: a bad limit is refused before anything is made.
    const { parseSpec } = require('../runtime/spec.js') as typeof import('../runtime/spec.js')
    parseSpec({ name: ns, image, hostname, command, env, limits }, where)
  } catch (err) {
    if (!(err instanceof ConfigError) || !err.where?.startsWith(where)) throw err
    // "nodes.c1.limits.memory" -> [nodes, c1, limits, memory], placed in the file
    const rest = err.where
      .slice(where.length)
      .split(/\.|\[(\d+)\]/)
      .filter((x) => x)
      .map((x) => (/^\d+$/.test(x) ? Number(x) : x))
    const field = rest[0] === 'name' ? [] : rest
    throw new ConfigError(err.message.slice(err.where.length + 2), l.at([...p, ...field]), {
      ...(err.hint ? { hint: err.hint } : {}),
    })
  }
  const own = (k: string): FieldPath => (k in n ? [...p, k] : ['defaults', k])
  const cpusetAt = (): string =>
    l.at(n.limits?.cpusetCpus !== undefined ? [...p, 'limits', 'cpusetCpus'] : own('limits'))
  const imageAt = (): string => l.at(own('image'))
  return { name: ns, image, hostname, command, env, limits, imageAt, cpusetAt }
}

/** The plan's step for a container node. */
export function containerRunOp(c: ContainerNode): RunOp {
  const { name, image, hostname, command, env, limits } = c
  return { kind: 'container.run', name, image, hostname, command, env, limits }
}

/** Preflight: every image is imported, and cpusets name cpus this machine has. */
export function checkContainers(cs: readonly ContainerNode[]): void {
  if (!cs.length) return
  const { getImage } = require('../runtime/image.js') as typeof import('../runtime/image.js')
  const { parseCpuset } = require('../runtime/spec.js') as typeof import('../runtime/spec.js')
  const { machineCpus } = require('../runtime/cgroups.js') as typeof import('../runtime/cgroups.js')
  for (const c of cs) {
    try {
      getImage(c.image)
    } catch {
      throw new ConfigError(`image "${c.image}" is not imported`, c.imageAt(), {
        hint: `nsdn image import ${c.image} DIR (a root filesystem directory or a tarball)`,
      })
    }
    if (c.limits.cpusetCpus === undefined) continue
    try {
      parseCpuset(c.limits.cpusetCpus, 'cpusetCpus', machineCpus())
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err
      const msg = err.message.replace(/^cpusetCpus: /, '')
      throw new ConfigError(msg, c.cpusetAt(), { ...(err.hint ? { hint: err.hint } : {}) })
    }
  }
}

/** Run `fn` without --explain: the runtime's own steps are not the lab's printed commands. */
async function quietly<T>(fn: () => Promise<T>): Promise<T> {
  const was = opMode.explain
  opMode.explain = false
  try {
    return await fn()
  } finally {
    opMode.explain = was
  }
}

/** Create and start a container node. Equivalent: `nsdn run -d --name ... -- CMD`. */
export function runContainer(op: RunOp): Promise<void> {
  return runOp(
    op,
    () =>
      quietly(async () => {
        const rt = await import('../runtime/index.js')
        const { name, image, hostname, command, env, limits } = op
        await rt.run({ name, image, hostname, command, env, limits })
      }),
    undefined,
  )
}

/**
 * Remove containers with force; a name with no container (never made, or already removed) is
 * done. A deploy killed inside the runtime's create or start may leave a state directory
 * without state, or a netns the state does not name yet: those go too.
 */
export async function removeContainers(names: readonly string[]): Promise<void> {
  if (!names.length) return
  const rt = await import('../runtime/index.js')
  const { dataDir } = await import('../runtime/state.js')
  for (const name of names)
    await runOp(
      { kind: 'container.rm', name },
      () =>
        quietly(async () => {
          await rt.remove(name, { force: true }).catch((err: unknown) => {
            if (!(err instanceof NsdnError && err.code === 'E_NOT_FOUND')) throw err
          })
          for (const d of [rt.stateDir(name), dataDir(name)])
            fs.rmSync(d, { recursive: true, force: true })
          if (NetNs.exists(name)) NetNs.delete(name)
        }),
      undefined,
    )
}

export interface ContainerStatus {
  status: string
  pid?: number
}

/** A container node's status ("absent" when there is no such container). */
export async function containerStatus(name: string): Promise<ContainerStatus> {
  const rt = await import('../runtime/index.js')
  try {
    const i = rt.info(name)
    return { status: i.status, ...(i.pid !== undefined ? { pid: i.pid } : {}) }
  } catch (err) {
    if (err instanceof NsdnError && err.code === 'E_NOT_FOUND') return { status: 'absent' }
    throw err
  }
}

/**
 * The imported image a containerlab `image:` stands for: the name itself, or its last path
 * component without the tag ("ghcr.io/x/alpine:3" -> "alpine"); undefined when neither is.
 */
export function importedImage(image: string): string | undefined {
  const { getImage } = require('../runtime/image.js') as typeof import('../runtime/image.js')
  const short = image.split('/').pop()!.split(/[:@]/)[0]!
  for (const name of [image, short]) {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(name)) continue
    try {
      getImage(name)
      return name
    } catch {
      // not this one
    }
  }
  return undefined
}
