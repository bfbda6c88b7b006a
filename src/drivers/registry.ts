/**
 * The driver registry. Built-in drivers are the folders of plugins/; third-party drivers are
 * folders of the same shape (`<dir>/<name>/index.js` exporting `driver`) in extra directories
 * named by NSDN_DRIVER_PATH (colon-separated) or `--driver-path`: adding one needs no change to
 * src/. Drivers load lazily, on first use.
 * @module
 */
import fs from 'node:fs'
import path from 'node:path'
import { ConfigError, NsdnError } from '../errors.js'
import type { NetConfBase, NetworkDriver } from './api.js'

/** dist/src/drivers -> dist/plugins */
const BUILTIN_DIR = path.resolve(__dirname, '../../plugins')

const extraDirs: string[] = []

/** Add a directory to search for drivers (the CLI's --driver-path); it must exist. */
export function addDriverDir(dir: string, where = '--driver-path'): void {
  const abs = path.resolve(dir)
  let isDir = false
  try {
    isDir = fs.statSync(abs).isDirectory()
  } catch {
    // missing: said below
  }
  if (!isDir)
    throw new ConfigError(`no directory ${abs}`, where, {
      hint: 'give a directory that holds driver folders (NAME/index.js)',
    })
  extraDirs.push(abs)
}

function searchDirs(): string[] {
  const env = (process.env.NSDN_DRIVER_PATH ?? '').split(':').filter(Boolean)
  return [...extraDirs, ...env.map((d) => path.resolve(d)), BUILTIN_DIR]
}

/** Every driver name found, with the directory it comes from (first directory wins). */
export function listDrivers(): Map<string, string> {
  const found = new Map<string, string>()
  for (const dir of searchDirs()) {
    let entries: string[]
    try {
      entries = fs.readdirSync(dir)
    } catch {
      continue
    }
    for (const name of entries.sort())
      if (!found.has(name) && fs.existsSync(path.join(dir, name, 'index.js')))
        found.set(name, path.join(dir, name))
  }
  return found
}

const loaded = new Map<string, NetworkDriver>()
const provided = new Map<string, () => { driver?: NetworkDriver }>()

/**
 * Hand over a built-in driver's module as a static require, so that a single-file bundle (the
 * CNI plugins' Node fallback) carries its code instead of loading a second copy of nsdn from
 * dist/. Used only when the name resolves to the built-in folder: extra directories still win.
 */
export function provideBuiltin(name: string, load: () => { driver?: NetworkDriver }): void {
  provided.set(name, load)
}

/** The driver called name; an unknown name lists the known ones. */
export function getDriver(name: string): NetworkDriver<NetConfBase> {
  const hit = loaded.get(name)
  if (hit) return hit
  if (!/^[a-z0-9][a-z0-9-]*$/.test(name))
    throw new ConfigError(`invalid driver name "${name}"`, 'driver', {
      hint: 'driver names are lowercase letters, digits and "-"',
    })
  const all = listDrivers()
  const dir = all.get(name)
  if (!dir)
    throw new ConfigError(`unknown driver "${name}"`, 'driver', {
      hint:
        `known drivers: ${[...all.keys()].join(', ') || 'none'}; add directories with ` +
        'NSDN_DRIVER_PATH or --driver-path',
    })
  const own = dir === path.join(BUILTIN_DIR, name) ? provided.get(name) : undefined
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mod = own ? own() : (require(path.join(dir, 'index.js')) as { driver?: NetworkDriver })
  const d = mod.driver
  if (!d || d.name !== name || typeof d.add !== 'function' || typeof d.parseConf !== 'function')
    throw new NsdnError('E_CONFIG', `${dir}/index.js does not export a driver named "${name}"`, {
      hint: 'export const driver = { name, parseConf, add, del, check }',
    })
  loaded.set(name, d)
  return d
}
