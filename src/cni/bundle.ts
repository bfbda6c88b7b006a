/**
 * The entry of the Node fallback's single-file bundle (scripts/bundle-cni.js bundles it into
 * fallback.bundle.js; fallback.ts runs it).
 * @module
 */
import { getDriver } from '../drivers/registry.js'
import { PLUGIN_TYPES, driverOf, loadPlugin } from './plugins.js'

export { cniMain } from './main.js'

/** Load every plugin's code without calling it, so V8's code cache covers them all. */
export async function warm(): Promise<void> {
  for (const type of PLUGIN_TYPES) {
    await loadPlugin(type)
    const d = driverOf(type)
    if (d) getDriver(d)
  }
}
