/**
 * Entry point of the `nsdn` command (bin/nsdn): the fast path (fast.ts), else the whole CLI
 * (bundle.ts), from setup's single-file bundle when it is fresh (src/bundle.ts).
 * @module
 */
import path from 'node:path'
import type * as Start from '../bundle.js'
import type * as Cli from './bundle.js'
import { fastPath } from './fast.js'

const argv = process.argv.slice(2)
if (!fastPath(argv)) {
  // loaded here, not at the top: the fast path (exec, --version) loads no more than it needs
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { start } = require('../bundle.js') as typeof Start
  // A third-party driver imports nsdn from dist/: beside the bundle it would be a second copy.
  const plain = !!process.env.NSDN_DRIVER_PATH || argv.some((a) => a.startsWith('--driver-path'))
  const cli = start<typeof Cli>('cli', path.join(__dirname, 'bundle.js'), plain)
  void cli.exports.main(argv).then((ran) => {
    if (ran) cli.learn(ran.replace(/ /g, '.'))
  })
}
