/**
 * How nsdn's latency-bound processes start: the CLI (bin/nsdn) and the CNI plugins' Node
 * fallback. Beyond Node's own start, a plain start mostly finds, reads and compiles some 100
 * modules. So setup (scripts/bundle.js) puts each front's modules into one file,
 * dist/bundle/FRONT.js, and stores V8's code cache of it beside it (FRONT.cache): one read, no
 * resolution, no compiling. Setup can only load the modules, so after the first good run of
 * each kind (a CNI type and verb, a CLI command) the cache is stored again with the functions
 * that run compiled (and after any run when V8 rejected the cache, e.g. after a Node upgrade).
 * The plain modules run instead when the bundle is absent or older than the build (tsc ran
 * since setup), when the caller says so (third-party drivers would load a second copy of
 * nsdn), or with NSDN_NO_BUNDLE=1.
 * @module
 */
import fs from 'node:fs'
import Module from 'node:module'
import path from 'node:path'
import vm from 'node:vm'

/** dist/src -> dist/bundle */
export const BUNDLE_DIR = path.resolve(__dirname, '../bundle')

export type Front = 'cli' | 'cni'

export interface Started<T> {
  exports: T
  /** After a run: store the cache with what it compiled, once per kind of run (key). */
  learn(key: string): void
}

const files = (front: Front) => ({
  bundle: path.join(BUNDLE_DIR, `${front}.js`),
  cache: path.join(BUNDLE_DIR, `${front}.cache`),
  learned: path.join(BUNDLE_DIR, `${front}.learned`),
})

/** The bundle's exports (its module code run) and its script. */
function load<T>(front: Front, entry: string, cachedData: Buffer | undefined) {
  const { bundle } = files(front)
  const script = new vm.Script(Module.wrap(fs.readFileSync(bundle, 'utf8')), {
    filename: bundle,
    ...(cachedData ? { cachedData } : {}),
  })
  const m = { exports: {} as T }
  const fn = script.runInThisContext() as (...a: unknown[]) => void
  // require as the plain entry's: the packages left outside resolve as they always do
  fn.call(m.exports, m.exports, Module.createRequire(entry), m, bundle, BUNDLE_DIR)
  return { exports: m.exports, script }
}

/** The bundle exists and is not older than the plain entry tsc wrote. */
function fresh(front: Front, entry: string): boolean {
  try {
    return fs.statSync(files(front).bundle).mtimeMs >= fs.statSync(entry).mtimeMs
  } catch {
    return false
  }
}

/**
 * Start a front: its bundle when fresh, else the plain module at `entry` (the compiled file
 * the bundle was built from, e.g. dist/src/cli/bundle.js). `plain`: the caller's own reason
 * to run the plain modules.
 */
export function start<T>(front: Front, entry: string, plain = false): Started<T> {
  if (plain || process.env.NSDN_NO_BUNDLE === '1' || !fresh(front, entry))
    return { exports: require(entry) as T, learn: () => undefined }
  const f = files(front)
  let cached: Buffer | undefined
  try {
    cached = fs.readFileSync(f.cache)
  } catch {
    cached = undefined // compiled without it: slower, same result
  }
  const { exports, script } = load<T>(front, entry, cached)
  return { exports, learn: (key) => learn(front, script, key) }
}

function learn(front: Front, script: vm.Script, key: string): void {
  // A failed run ran an error path, not the functions the next ones will need.
  if (process.exitCode !== undefined && process.exitCode !== 0) return
  if (!/^[a-z0-9][a-z0-9.-]*$/.test(key)) return
  const f = files(front)
  const marker = path.join(f.learned, key)
  // undefined: there was no cache to accept
  const stale = script.cachedDataRejected !== false
  if (!stale && fs.existsSync(marker)) return
  const tmp = `${f.cache}.${process.pid}`
  try {
    fs.accessSync(BUNDLE_DIR, fs.constants.W_OK)
    fs.writeFileSync(tmp, script.createCachedData())
    fs.renameSync(tmp, f.cache) // a concurrent start reads the old cache or the new one
    if (stale) fs.rmSync(f.learned, { recursive: true, force: true })
    fs.mkdirSync(f.learned, { recursive: true })
    fs.writeFileSync(marker, '')
  } catch {
    // A read-only install (or a full disk): runs stay as fast as setup's cache makes them.
    fs.rmSync(tmp, { force: true })
  }
}

/** Setup's step: run the bundle's module code, then warm(), and store V8's code cache. */
export async function buildCache(front: Front, entry: string): Promise<{ bytes: number }> {
  const { exports, script } = load<{ warm(): Promise<void> }>(front, entry, undefined)
  await exports.warm()
  const f = files(front)
  const data = script.createCachedData()
  fs.writeFileSync(f.cache, data)
  fs.rmSync(f.learned, { recursive: true, force: true })
  return { bytes: data.length }
}

/**
 * require() of a module nsdn generates at run time (the lab schema's compiled validator),
 * through V8's code cache beside it (FILE.cache): its code is large, and compiling it cost
 * more than running it. `store()`, after the module has done its work once, writes the cache
 * with the functions that work compiled, when there was none or V8 rejected it.
 */
export function requireCached(file: string): { exports: unknown; store(): void } {
  const cacheFile = `${file}.cache`
  let cachedData: Buffer | undefined
  try {
    cachedData = fs.readFileSync(cacheFile)
  } catch {
    cachedData = undefined
  }
  const script = new vm.Script(Module.wrap(fs.readFileSync(file, 'utf8')), {
    filename: file,
    ...(cachedData ? { cachedData } : {}),
  })
  const m = { exports: {} as unknown }
  const fn = script.runInThisContext() as (...a: unknown[]) => void
  fn.call(m.exports, m.exports, Module.createRequire(file), m, file, path.dirname(file))
  const store = (): void => {
    if (script.cachedDataRejected === false) return
    const tmp = `${cacheFile}.${process.pid}`
    try {
      fs.writeFileSync(tmp, script.createCachedData())
      fs.renameSync(tmp, cacheFile)
    } catch {
      fs.rmSync(tmp, { force: true }) // read-only: compiled each time, as before
    }
  }
  return { exports: m.exports, store }
}
