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

/**
 * Run a CommonJS file as Node would, but through V8's code cache when there is one: its
 * exports and its script (whose cache can be stored again). `requireFrom`: whose require() the
 * file gets.
 */
function runCached<T>(
  file: string,
  cachedData: Buffer | undefined,
  requireFrom: string,
): { exports: T; script: vm.Script } {
  const script = new vm.Script(Module.wrap(fs.readFileSync(file, 'utf8')), {
    filename: file,
    ...(cachedData ? { cachedData } : {}),
  })
  const m = { exports: {} as T }
  const fn = script.runInThisContext() as (...a: unknown[]) => void
  fn.call(m.exports, m.exports, Module.createRequire(requireFrom), m, file, path.dirname(file))
  return { exports: m.exports, script }
}

/** A cache file's bytes, or undefined when there is none (compiled without it: slower). */
function readCache(file: string): Buffer | undefined {
  try {
    return fs.readFileSync(file)
  } catch {
    return undefined
  }
}

/**
 * Replace a cache file with the script's code cache (a temporary, then rename: a concurrent
 * start reads the old cache or the new one). False when it cannot be written (a read-only
 * install, a full disk): runs stay as fast as the cache already there makes them.
 */
function storeCache(script: vm.Script, file: string): boolean {
  const tmp = `${file}.${process.pid}`
  try {
    fs.writeFileSync(tmp, script.createCachedData())
    fs.renameSync(tmp, file)
    return true
  } catch {
    fs.rmSync(tmp, { force: true })
    return false
  }
}

/** The bundle's exports (its module code run) and its script. */
function load<T>(front: Front, entry: string, cachedData: Buffer | undefined) {
  // require as the plain entry's: the packages left outside resolve as they always do
  return runCached<T>(files(front).bundle, cachedData, entry)
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
  const { exports, script } = load<T>(front, entry, readCache(files(front).cache))
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
  if (!storeCache(script, f.cache)) return
  try {
    if (stale) fs.rmSync(f.learned, { recursive: true, force: true })
    fs.mkdirSync(f.learned, { recursive: true })
    fs.writeFileSync(marker, '')
  } catch {
    // no marker: the next run of this kind stores the cache again
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
  const { exports, script } = runCached<unknown>(file, readCache(cacheFile), file)
  const store = (): void => {
    if (script.cachedDataRejected !== false) storeCache(script, cacheFile)
  }
  return { exports, store }
}
