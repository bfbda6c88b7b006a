/**
 * The Node fallback past its entry (fallback.ts): what setup bundles into dist/bundle/cni.js
 * (src/bundle.ts), and what runs from dist/ when there is no fresh bundle.
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
