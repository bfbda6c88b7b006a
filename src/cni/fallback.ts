/**
 * The Node fallback's entry, as the shim runs it: `node fallback.js TYPE`. A plugin process is
 * latency (a runtime waits for it): it starts from setup's single-file bundle when that is
 * fresh (src/bundle.ts), else from main.js as it is. With third-party driver directories, the
 * plain modules run: a driver's own imports of nsdn would be a second copy beside the bundle.
 * @module
 */
import path from 'node:path'
import { start } from '../bundle.js'
import type * as Cni from './bundle.js'

if (require.main === module) {
  const type = process.argv[2] ?? ''
  const verb = process.env.CNI_COMMAND ?? ''
  const cni = start<typeof Cni>(
    'cni',
    path.join(__dirname, 'bundle.js'),
    !!process.env.NSDN_DRIVER_PATH,
  )
  void cni.exports.cniMain(type).then(() => {
    if (['ADD', 'DEL', 'CHECK'].includes(verb)) cni.learn(`${type}.${verb.toLowerCase()}`)
  })
}
