/**
 * The container's root filesystem as the mount steps init runs in the container's new mount
 * namespace: an overlay of read-only image layers under a per-container upper directory (or the
 * host's root bound read-only), then /proc, /sys, a small /dev, the spec's mounts, pivot_root.
 * Everything is mounted inside that namespace, so it all goes when the container does.
 * @module
 */
import fs from 'node:fs'
import path from 'node:path'
import { MS } from '../ffi/libc.js'
import type { Op } from '../op.js'
import { layerDir } from './image.js'
import type { ContainerSpec } from './spec.js'

/** The per-container directories of an image root: overlay's upper and work directories. */
export function overlayDirs(data: string): { upper: string; work: string } {
  return { upper: path.join(data, 'upper'), work: path.join(data, 'work') }
}

const DEVICES = ['null', 'zero', 'full', 'random', 'urandom', 'tty']

/**
 * The steps that build the root at `root` (a directory of the host) and enter it.
 * `layers` are the image's layer ids, top first; `data` holds upper and work.
 */
export function rootfsSteps(
  spec: ContainerSpec,
  root: string,
  layers: string[],
  data: string,
): Op[] {
  const at = (p: string): string => path.join(root, p)
  const mnt = (
    target: string,
    fstype: string,
    flags: number,
    data?: string,
    source = fstype,
  ): Op => ({
    kind: 'mount',
    source,
    target,
    fstype,
    flags,
    ...(data ? { data } : {}),
  })
  const steps: Op[] = [{ kind: 'mount', target: '/', flags: MS.REC | MS.PRIVATE }]
  if ('image' in spec.rootfs) {
    const { upper, work } = overlayDirs(data)
    const lower = layers.map(layerDir).join(':')
    steps.push(mnt(root, 'overlay', 0, `lowerdir=${lower},upperdir=${upper},workdir=${work}`))
  } else {
    steps.push(
      { kind: 'mount', source: '/', target: root, flags: MS.BIND },
      { kind: 'mount', target: root, flags: MS.REMOUNT | MS.BIND | MS.RDONLY },
    )
  }
  const nosuid = MS.NOSUID | MS.NODEV | MS.NOEXEC
  steps.push({ kind: 'fs.mkdir', path: at('proc') }, mnt(at('proc'), 'proc', nosuid))
  steps.push({ kind: 'fs.mkdir', path: at('sys') })
  // sysfs shows the devices of the mounter's net namespace; without one of its own, bind the host's
  if (spec.namespaces.includes('net')) steps.push(mnt(at('sys'), 'sysfs', nosuid | MS.RDONLY))
  else
    steps.push(
      { kind: 'mount', source: '/sys', target: at('sys'), flags: MS.BIND | MS.REC },
      { kind: 'mount', target: at('sys'), flags: MS.REMOUNT | MS.BIND | MS.RDONLY },
    )
  steps.push(
    { kind: 'fs.mkdir', path: at('dev') },
    mnt(at('dev'), 'tmpfs', MS.NOSUID, 'mode=755,size=65536k'),
  )
  for (const d of DEVICES)
    steps.push(
      { kind: 'fs.touch', path: at(`dev/${d}`) },
      { kind: 'mount', source: `/dev/${d}`, target: at(`dev/${d}`), flags: MS.BIND },
    )
  steps.push(
    { kind: 'fs.mkdir', path: at('dev/pts') },
    mnt(at('dev/pts'), 'devpts', MS.NOSUID | MS.NOEXEC, 'newinstance,ptmxmode=0666,mode=0620'),
    { kind: 'fs.symlink', target: 'pts/ptmx', path: at('dev/ptmx') },
    { kind: 'fs.mkdir', path: at('dev/shm') },
    mnt(at('dev/shm'), 'tmpfs', nosuid, 'mode=1777,size=65536k', 'shm'),
    { kind: 'fs.symlink', target: '/proc/self/fd', path: at('dev/fd') },
  )
  for (const m of spec.mounts) {
    const target = at(m.target)
    if (m.type === 'tmpfs') {
      steps.push(
        { kind: 'fs.mkdir', path: target },
        mnt(target, 'tmpfs', MS.NOSUID | MS.NODEV, m.options),
      )
      continue
    }
    const isDir = fs.statSync(m.source).isDirectory()
    steps.push(isDir ? { kind: 'fs.mkdir', path: target } : { kind: 'fs.touch', path: target }, {
      kind: 'mount',
      source: m.source,
      target,
      flags: MS.BIND | MS.REC,
    })
    if (m.readonly) steps.push({ kind: 'mount', target, flags: MS.REMOUNT | MS.BIND | MS.RDONLY })
  }
  steps.push({ kind: 'pivot_root', root })
  return steps
}
