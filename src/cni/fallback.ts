/**
 * The Node fallback's entry, as the shim runs it: `node fallback.js TYPE`. A plugin process is
 * latency (a runtime waits for it), and most of a Node plugin's start beyond Node's own is
 * finding and compiling some 80 modules. So setup bundles them into one file
 * (fallback.bundle.js, scripts/bundle-cni.js) and stores V8's code cache of it beside it
 * (fallback.bundle.cache): one read, no resolution, no compiling. Setup can only load the
 * modules (a real call needs a namespace), so the first good ADD, DEL and CHECK of each type
 * stores the cache again after it has answered, with the functions it ran (and any call does
 * when this node rejected the cache, e.g. after an upgrade). Without a fresh bundle
 * (`tsc` ran since setup) or with third-party driver directories (their modules would load a
 * second copy of nsdn), it runs main.js as it is.
 * @module
 */
import fs from 'node:fs'
import Module from 'node:module'
import path from 'node:path'
import vm from 'node:vm'

const BUNDLE = path.join(__dirname, 'fallback.bundle.js')
const CACHE = path.join(__dirname, 'fallback.bundle.cache')
const MAIN = path.join(__dirname, 'main.js')
/** Markers of the calls (TYPE.VERB) the cache has been stored after. */
const LEARNED = path.join(__dirname, 'fallback.bundle.learned')

interface Bundle {
  cniMain(type: string): Promise<void>
  warm(): Promise<void>
}

/** The bundle's exports, its modules seeing __dirname as main.js does; and its script. */
function load(cachedData: Buffer | undefined): { exports: Bundle; script: vm.Script } {
  const script = new vm.Script(Module.wrap(fs.readFileSync(BUNDLE, 'utf8')), {
    filename: BUNDLE,
    ...(cachedData ? { cachedData } : {}),
  })
  const m = { exports: {} as Bundle }
  const fn = script.runInThisContext() as (...a: unknown[]) => void
  fn.call(m.exports, m.exports, Module.createRequire(MAIN), m, MAIN, __dirname)
  return { exports: m.exports, script }
}

/** Setup's step: run the bundle's module code and store V8's code cache of what it compiled. */
export async function buildCache(): Promise<{ bytes: number }> {
  const { exports, script } = load(undefined)
  await exports.warm()
  const data = script.createCachedData()
  fs.writeFileSync(CACHE, data)
  fs.rmSync(LEARNED, { recursive: true, force: true })
  return { bytes: data.length }
}

/** After a call: store the cache with what it compiled, once per plugin type and verb. */
function learn(script: vm.Script, type: string): void {
  const verb = process.env.CNI_COMMAND ?? ''
  // A failed call ran an error path, not the functions the next ones will need.
  if (process.exitCode !== 0) return
  if (!/^[a-z0-9-]+$/.test(type) || !['ADD', 'DEL', 'CHECK'].includes(verb)) return
  const marker = path.join(LEARNED, `${type}.${verb}`)
  // undefined: there was no cache to accept
  const stale = script.cachedDataRejected !== false
  if (!stale && fs.existsSync(marker)) return
  const tmp = `${CACHE}.${process.pid}`
  try {
    fs.accessSync(__dirname, fs.constants.W_OK)
    fs.writeFileSync(tmp, script.createCachedData())
    fs.renameSync(tmp, CACHE) // a concurrent call reads the old cache or the new one
    if (stale) fs.rmSync(LEARNED, { recursive: true, force: true })
    fs.mkdirSync(LEARNED, { recursive: true })
    fs.writeFileSync(marker, '')
  } catch {
    // A read-only install (or a full disk): calls stay as fast as setup's cache makes them.
    fs.rmSync(tmp, { force: true })
  }
}

function fresh(): boolean {
  try {
    return fs.statSync(BUNDLE).mtimeMs >= fs.statSync(MAIN).mtimeMs
  } catch {
    return false
  }
}

if (require.main === module) {
  const type = process.argv[2] ?? ''
  if (!process.env.NSDN_DRIVER_PATH && fresh()) {
    let cached: Buffer | undefined
    try {
      cached = fs.readFileSync(CACHE)
    } catch {
      cached = undefined // compiled without it: slower, same result
    }
    const { exports, script } = load(cached)
    void exports.cniMain(type).then(() => learn(script, type))
  } else {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    ;(require('./main.js') as { cniMain(t: string): Promise<void> }).cniMain(type)
  }
}
