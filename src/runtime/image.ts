/**
 * Images without a registry. A layer is a directory under NSDN_LIB_DIR/layers/ID, never changed
 * once written; an image is a name for a stack of layers (images/NAME.json, top layer first).
 * `import` makes a one-layer image from a directory or a tarball; `commit` turns a container's
 * upper directory into a new layer over the layers of its image, so the base stays shared.
 * @module
 */
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { ConfigError, ExecError, NsdnError } from '../errors.js'
import { runOpSync } from '../op.js'
import { validContainerName } from './spec.js'
import { libDir, listNames, loadState, writeAtomic } from './state.js'

export interface Image {
  name: string
  /** Layer ids, top first. */
  layers: string[]
  created: string
  /** What it was made from: a path, or "commit of CONTAINER". */
  source: string
}

const imagesDir = (): string => path.join(libDir(), 'images')
export const layerDir = (id: string): string => path.join(libDir(), 'layers', id)
const imageFile = (name: string): string => path.join(imagesDir(), `${name}.json`)

export function getImage(name: string): Image {
  try {
    return JSON.parse(fs.readFileSync(imageFile(name), 'utf8'))
  } catch {
    throw new NsdnError('E_NOT_FOUND', `no image named "${name}"`, {
      hint: 'import one with "nsdn image import NAME DIR|TARBALL"; "nsdn image list" shows them',
    })
  }
}

export function listImages(): Image[] {
  let files: string[] = []
  try {
    files = fs.readdirSync(imagesDir()).filter((f) => f.endsWith('.json'))
  } catch {
    // no image yet
  }
  return files.map((f) => getImage(f.slice(0, -5))).sort((a, b) => a.name.localeCompare(b.name))
}

function run(argv: string[]): void {
  const [cmd, ...args] = argv as [string, ...string[]]
  const r = spawnSync(cmd, args, { encoding: 'utf8' })
  if (r.status !== 0)
    throw new ExecError(
      `${cmd} failed: ${(r.stderr || r.error?.message || '').trim()}`,
      argv,
      r.status,
      r.stderr ?? '',
    )
}

/** Copy a tree with owners, modes, xattrs and whiteout devices kept. */
export function copyTree(from: string, to: string): void {
  runOpSync(
    { kind: 'copy', from: `${from}/.`, to },
    () => run(['cp', '-a', `${from}/.`, to]),
    undefined,
  )
}

function newLayer(): { id: string; dir: string } {
  const id = randomBytes(12).toString('hex')
  const dir = layerDir(id)
  runOpSync(
    { kind: 'fs.mkdir', path: dir },
    () => fs.mkdirSync(dir, { recursive: true }),
    undefined,
  )
  return { id, dir }
}

function saveImage(img: Image): void {
  fs.mkdirSync(imagesDir(), { recursive: true })
  writeAtomic(imageFile(img.name), JSON.stringify(img, null, 2))
}

function claimName(name: string): void {
  validContainerName(name, 'image name')
  if (fs.existsSync(imageFile(name)))
    throw new NsdnError('E_EXISTS', `image "${name}" exists`, {
      hint: `remove it with "nsdn image rm ${name}" or pick another name`,
    })
}

/** `nsdn image import NAME DIR|TARBALL`: a one-layer image. */
export function importImage(name: string, source: string): Image {
  claimName(name)
  let st: fs.Stats
  try {
    st = fs.statSync(source)
  } catch {
    throw new ConfigError(`"${source}" does not exist`, 'image import SOURCE', {
      hint: 'give a root filesystem directory or a tarball of one',
    })
  }
  const { id, dir } = newLayer()
  try {
    if (st.isDirectory()) copyTree(source, dir)
    else
      runOpSync(
        { kind: 'untar', file: source, to: dir },
        () => run(['tar', '--numeric-owner', '-xpf', source, '-C', dir]),
        undefined,
      )
    const img: Image = {
      name,
      layers: [id],
      created: new Date().toISOString(),
      source: path.resolve(source),
    }
    saveImage(img)
    return img
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true })
    throw err
  }
}

/** Containers (by name) made from this image. */
function usersOf(img: Image): string[] {
  return listNames().filter((n) => {
    try {
      const r = loadState(n).spec.rootfs
      return 'image' in r && r.image === img.name
    } catch {
      return false
    }
  })
}

/** `nsdn image rm NAME`: the image, and its layers no other image or container uses. */
export function removeImage(name: string): void {
  const img = getImage(name)
  const users = usersOf(img)
  if (users.length)
    throw new NsdnError('E_EXISTS', `image "${name}" is used by ${users.join(', ')}`, {
      hint: 'remove those containers first ("nsdn rm -f NAME")',
    })
  runOpSync({ kind: 'rm', path: imageFile(name) }, () => fs.rmSync(imageFile(name)), undefined)
  const used = new Set<string>()
  for (const i of listImages()) for (const l of i.layers) used.add(l)
  for (const n of listNames())
    try {
      for (const l of loadState(n).layers) used.add(l)
    } catch {
      // a half-removed container: its layers are not claimed
    }
  for (const l of img.layers)
    if (!used.has(l))
      runOpSync(
        { kind: 'rm', path: layerDir(l) },
        () => fs.rmSync(layerDir(l), { recursive: true, force: true }),
        undefined,
      )
}

/** `nsdn commit CONTAINER IMAGE`: the container's upper layer as a new layer over its base. */
export function commitLayer(name: string, upper: string, base: string[], container: string): Image {
  claimName(name)
  const { id, dir } = newLayer()
  try {
    copyTree(upper, dir)
    const img: Image = {
      name,
      layers: [id, ...base],
      created: new Date().toISOString(),
      source: `commit of ${container}`,
    }
    saveImage(img)
    return img
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true })
    throw err
  }
}
