/**
 * The CNI plugins nsdn ships, by type (the executable's name in a CNI bin directory). Each is
 * loaded on first use: a plugin process pays only for its own code.
 * @module
 */
import type { CniPlugin } from './skel.js'

const DRIVER_PLUGINS = {
  'nsdn-bridge': 'bridge',
  'nsdn-ovs': 'ovs',
  'nsdn-vlan': 'vlan',
  'nsdn-routed': 'routed',
} as const

export const PLUGIN_TYPES = [...Object.keys(DRIVER_PLUGINS), 'nsdn-ipam', 'nsdn-portmap'] as const

const cache = new Map<string, CniPlugin>()

/** The plugin of a type, or undefined when nsdn has none of that name. */
export async function loadPlugin(type: string): Promise<CniPlugin | undefined> {
  const hit = cache.get(type)
  if (hit) return hit
  let p: CniPlugin | undefined
  if (type in DRIVER_PLUGINS)
    p = (await import('./driver-plugin.js')).driverPlugin(
      DRIVER_PLUGINS[type as keyof typeof DRIVER_PLUGINS],
    )
  else if (type === 'nsdn-ipam') p = (await import('./ipam-plugin.js')).ipamPlugin
  else if (type === 'nsdn-portmap') p = (await import('./portmap.js')).portmapPlugin
  if (p) cache.set(type, p)
  return p
}
