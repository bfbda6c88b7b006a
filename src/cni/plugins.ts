/**
 * The CNI plugins nsdn ships, by type (the executable's name in a CNI bin directory). Each is
 * loaded on first use: a plugin process pays only for its own code.
 * @module
 */
import type { NetworkDriver } from '../drivers/api.js'
import { provideBuiltin } from '../drivers/registry.js'
import type { CniPlugin } from './skel.js'

type DriverModule = { driver?: NetworkDriver }

/* eslint-disable @typescript-eslint/no-require-imports -- static requires, loaded on first use,
   that a bundler can follow (the registry's own require takes a computed path) */
const DRIVER_PLUGINS: Record<string, [string, () => DriverModule]> = {
  'nsdn-bridge': ['bridge', () => require('../../plugins/bridge/index.js') as DriverModule],
  'nsdn-ovs': ['ovs', () => require('../../plugins/ovs/index.js') as DriverModule],
  'nsdn-vlan': ['vlan', () => require('../../plugins/vlan/index.js') as DriverModule],
  'nsdn-routed': ['routed', () => require('../../plugins/routed/index.js') as DriverModule],
}
/* eslint-enable @typescript-eslint/no-require-imports */
for (const [name, load] of Object.values(DRIVER_PLUGINS)) provideBuiltin(name, load)

export const PLUGIN_TYPES = [...Object.keys(DRIVER_PLUGINS), 'nsdn-ipam', 'nsdn-portmap'] as const

/** The driver of a driver plugin type (nsdn-bridge -> bridge). */
export const driverOf = (type: string): string | undefined => DRIVER_PLUGINS[type]?.[0]

const cache = new Map<string, CniPlugin>()

/** The plugin of a type, or undefined when nsdn has none of that name. */
export async function loadPlugin(type: string): Promise<CniPlugin | undefined> {
  const hit = cache.get(type)
  if (hit) return hit
  let p: CniPlugin | undefined
  const driver = driverOf(type)
  if (driver) p = (await import('./driver-plugin.js')).driverPlugin(driver)
  else if (type === 'nsdn-ipam') p = (await import('./ipam-plugin.js')).ipamPlugin
  else if (type === 'nsdn-portmap') p = (await import('./portmap.js')).portmapPlugin
  if (p) cache.set(type, p)
  return p
}
