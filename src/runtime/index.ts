/**
 * The runtime's library API (the lab engine and the CLI use it): containers from a spec, their
 * lifecycle, exec, images, diff, LXC configs.
 * @module
 */
import fs from 'node:fs'
import path from 'node:path'
import type { Readable, Writable } from 'node:stream'
import { NsdnError } from '../errors.js'
import { commitLayer } from './image.js'
import { create, info, start } from './launch.js'
import type { ContainerInfo, Started, StartOptions } from './launch.js'
import { overlayDirs } from './rootfs.js'
import type { ContainerSpec } from './spec.js'
import { dataDir, initAlive, loadState, stateDir } from './state.js'
import type { Image } from './image.js'

export * from './launch.js'
export { exec, spawnExec } from './exec.js'
export type { ExecOptions } from './exec.js'
export { diff } from './diff.js'
export type { Change } from './diff.js'
export { getImage, importImage, listImages, removeImage } from './image.js'
export type { Image } from './image.js'
export { specFromLxc } from './lxc-config.js'
export { loadSpecFile, parseSpec, readSpecFile } from './spec.js'
export type { ContainerSpec, MountSpec, NetworkSpec } from './spec.js'
export type { Limits, CgroupStats } from './cgroups.js'
export { initPath, loadState, stateDir } from './state.js'

/** Create and start (docker run); a failed start removes what create made. */
export async function run(spec: ContainerSpec | unknown, o: StartOptions = {}): Promise<Started> {
  const st = create(spec)
  try {
    return await start(st.spec.name, o)
  } catch (err) {
    const { remove } = await import('./launch.js')
    await remove(st.spec.name, { force: true })
    throw err
  }
}

/** `nsdn commit NAME IMAGE`. */
export function commit(name: string, image: string): Image {
  const st = loadState(name)
  if (!('image' in st.spec.rootfs))
    throw new NsdnError('E_USAGE', `container "${name}" runs on the host root: nothing to commit`)
  return commitLayer(image, overlayDirs(dataDir(name)).upper, st.layers, name)
}

/** info, plus the addresses of the container's network namespace. */
export async function infoWithAddresses(
  name: string,
): Promise<ContainerInfo & { addresses?: string[] }> {
  const i = info(name)
  if (!i.netns || i.status === 'stopped') return i
  const { Rtnl } = await import('../netlink/rtnl.js')
  const { addrList } = await import('../netlink/addr.js')
  const addrs = await addrList(Rtnl.named(i.netns))
  return { ...i, addresses: addrs.filter((a) => a.scope === 0).map((a) => a.cidr) }
}

/**
 * Follow a detached container's output (its log) and feed `input` to its stdin (a fifo init
 * holds open), until the container stops.
 */
export async function attach(name: string, input: Readable, output: Writable): Promise<void> {
  const st = loadState(name)
  if (!initAlive(st)) throw new NsdnError('E_NOT_FOUND', `container "${name}" is not running`)
  const dir = stateDir(name)
  const fifo = fs.createWriteStream(path.join(dir, 'stdin'))
  input.pipe(fifo)
  const log = path.join(dir, 'log')
  let pos = 0
  try {
    while (initAlive(st)) {
      const size = fs.statSync(log).size
      if (size > pos) {
        const fd = fs.openSync(log, 'r')
        const buf = Buffer.alloc(size - pos)
        fs.readSync(fd, buf, 0, buf.length, pos)
        fs.closeSync(fd)
        output.write(buf)
        pos = size
      }
      await new Promise((r) => setTimeout(r, 50))
    }
  } finally {
    input.unpipe(fifo)
    fifo.destroy()
    if (input === process.stdin) process.stdin.pause()
  }
}
