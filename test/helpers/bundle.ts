/**
 * The bundles setup builds (scripts/bundle.js, src/bundle.ts), one per front: where they are,
 * and why a test of one cannot run (absent, or older than the build).
 * @module
 */
import fs from 'node:fs'
import Module from 'node:module'
import path from 'node:path'
import vm from 'node:vm'

export type Front = 'cli' | 'cni'

const DIST = path.resolve(__dirname, '../..')

/** dist/bundle/FRONT.js */
export const bundleOf = (front: Front): string => path.join(DIST, `bundle/${front}.js`)

/** Why FRONT's bundle cannot be tested here, or undefined when it is built and fresh. */
export function bundleNotBuilt(front: Front): string | undefined {
  const bundle = bundleOf(front)
  if (!fs.existsSync(bundle)) return 'no bundle: scripts/setup.sh builds it after tsc'
  if (fs.statSync(bundle).mtimeMs < fs.statSync(path.join(DIST, `src/${front}/bundle.js`)).mtimeMs)
    return 'the bundle is older than the build (tsc ran since setup): run scripts/setup.sh'
  return undefined
}

/** Whether V8 takes the code cache stored beside FRONT's bundle. */
export function cacheAccepted(front: Front): boolean {
  const bundle = bundleOf(front)
  const script = new vm.Script(Module.wrap(fs.readFileSync(bundle, 'utf8')), {
    filename: bundle,
    cachedData: fs.readFileSync(bundle.replace(/\.js$/, '.cache')),
  })
  return script.cachedDataRejected === false
}
