/** nsdn's version, read from package.json (the fast path of main.ts prints it too). */
export const VERSION: string = (require('../../../package.json') as { version: string }).version
