/**
 * The Node fallback's entry, as the shim runs it: `node fallback.js TYPE`. A plugin process is
 * latency (a runtime waits for it), and most of a Node plugin's start beyond Node's own is
 * finding and compiling some 80 modules. So setup bundles them into one file
 * (fallback.bundle.js, scripts/bundle-cni.js) and stores V8's code cache of it beside it
 * (fallback.bundle.cache): one read, no resolution, no compiling. Without a fresh bundle
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
  return { bytes: data.length }
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
    void load(cached).exports.cniMain(type)
  } else {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    ;(require('./main.js') as { cniMain(t: string): Promise<void> }).cniMain(type)
  }
}
