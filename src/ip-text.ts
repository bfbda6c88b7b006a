/**
 * node:net's isIP, isIPv4 and isIPv6 without loading node:net, which brings the streams,
 * sockets and dgram with it (~5-7 ms of a plugin call that only checks address text). The
 * single-file bundles (scripts/bundle.js) serve these three from here; everything else of
 * node:net still loads on first use. IPv4 is decided here (dotted decimal, 0-255, no leading
 * zero, as node:net); any text with a colon goes to node:net's own isIPv6, and text without one
 * is no IPv6 address.
 * @module
 */

const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]\\d|\\d)'
const V4 = new RegExp(`^${OCTET}(?:\\.${OCTET}){3}$`)

export function isIPv4(input: unknown): boolean {
  return V4.test(`${input as string}`)
}

export function isIPv6(input: unknown): boolean {
  const text = `${input as string}`
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return text.includes(':') && (require('node:net') as typeof import('node:net')).isIPv6(text)
}

export function isIP(input: unknown): number {
  return isIPv4(input) ? 4 : isIPv6(input) ? 6 : 0
}
