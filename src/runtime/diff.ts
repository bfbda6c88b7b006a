/**
 * `nsdn diff NAME`: what a container changed in its root, as `docker diff` prints it: A (added),
 * C (changed), D (deleted). Read from the upper layer alone: a whiteout (a 0:0 character device)
 * is a deletion; an entry that exists in a lower layer is a change, else an addition. A directory
 * with changes below it shows as changed, as in docker.
 * @module
 */
import fs from 'node:fs'
import path from 'node:path'
import { layerDir } from './image.js'
import { overlayDirs } from './rootfs.js'
import { dataDir, loadState } from './state.js'

export interface Change {
  kind: 'A' | 'C' | 'D'
  path: string
}

export function diff(name: string): Change[] {
  const st = loadState(name)
  if (!('image' in st.spec.rootfs)) return [] // the host root is read-only: nothing changes
  const upper = overlayDirs(dataDir(name)).upper
  const lowers = st.layers.map(layerDir)
  const inLower = (rel: string): boolean =>
    lowers.some((l) => fs.lstatSync(path.join(l, rel), { throwIfNoEntry: false }) !== undefined)
  const out: Change[] = []
  const walk = (rel: string): void => {
    for (const e of fs.readdirSync(path.join(upper, rel), { withFileTypes: true })) {
      const r = path.join(rel, e.name)
      const abs = '/' + r
      if (e.isCharacterDevice() && fs.statSync(path.join(upper, r)).rdev === 0) {
        out.push({ kind: 'D', path: abs })
        continue
      }
      out.push({ kind: inLower(r) ? 'C' : 'A', path: abs })
      if (e.isDirectory()) walk(r)
    }
  }
  walk('')
  return out.sort((a, b) => a.path.localeCompare(b.path))
}
