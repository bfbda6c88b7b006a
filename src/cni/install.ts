/**
 * `nsdn cni install DIR`: put nsdn's plugins into a CNI bin directory (e.g. /opt/cni/bin) so a
 * runtime finds them by type. Each plugin is a copy of the compiled shim (dist/shim, built by
 * scripts/setup.sh), with nsdn-cni.conf beside it naming node, the plugin entry and the
 * agent's socket. Without a compiled shim, each plugin is a two-line script that runs Node.
 * @module
 */
import fs from 'node:fs'
import path from 'node:path'
import { NsdnError, errorMessage } from '../errors.js'
import { agentSocket } from './agent.js'
import { PLUGIN_TYPES } from './plugins.js'

/** dist/src/cni -> dist/shim/nsdn-cni-shim */
export const SHIM = path.resolve(__dirname, '../../shim/nsdn-cni-shim')
/** The Node fallback's entry: the bundle when setup built it, else main.js. */
const MAIN = path.join(__dirname, 'fallback.js')

export interface Installed {
  dir: string
  plugins: string[]
  /** 'shim': the C shim (agent, then Node); 'script': a shell script running Node. */
  mode: 'shim' | 'script'
}

export interface InstallOpts {
  /** The agent's socket. */
  socket?: string
  /** node and the plugin entry as the host sees them (an installer in a container differs). */
  node?: string
  main?: string
}

export function installPlugins(dir: string, o: InstallOpts = {}): Installed {
  const mode = fs.existsSync(SHIM) ? 'shim' : 'script'
  const node = o.node ?? process.execPath
  const main = o.main ?? MAIN
  try {
    fs.mkdirSync(dir, { recursive: true })
    if (mode === 'shim')
      fs.writeFileSync(
        path.join(dir, 'nsdn-cni.conf'),
        `${node}\n${main}\n${o.socket ?? agentSocket()}\n`,
      )
    for (const type of PLUGIN_TYPES) {
      const dst = path.join(dir, type)
      const tmp = `${dst}.tmp`
      // Write beside, then rename: a runtime may be executing the old one right now.
      if (mode === 'shim') fs.copyFileSync(SHIM, tmp)
      else
        fs.writeFileSync(
          tmp,
          `#!/bin/sh\nexec ${JSON.stringify(node)} ${JSON.stringify(main)} ${type}\n`,
        )
      fs.chmodSync(tmp, 0o755)
      fs.renameSync(tmp, dst)
    }
  } catch (err) {
    throw new NsdnError(
      'E_IO',
      `cannot install the CNI plugins into ${dir}: ${errorMessage(err)}`,
      {
        hint: 'give a writable directory, e.g. /opt/cni/bin (as root)',
      },
    )
  }
  return { dir, plugins: [...PLUGIN_TYPES], mode }
}
