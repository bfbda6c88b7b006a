/**
 * `nsdn --version`: the version of the package, read from its package.json. main.ts answers a
 * bare `nsdn --version` with it before loading any command (that would cost ~90 ms of start-up).
 * @module
 */
import fs from 'node:fs'
import path from 'node:path'

/** dist/src/cli/ -> the package root. */
const PACKAGE_JSON = path.resolve(__dirname, '../../../package.json')

export function version(): string {
  return (JSON.parse(fs.readFileSync(PACKAGE_JSON, 'utf8')) as { version: string }).version
}

/** `nsdn --version` or `nsdn -V` alone. */
export function isVersionRequest(argv: readonly string[]): boolean {
  return argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')
}
