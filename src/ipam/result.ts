/**
 * The pieces of a CNI Result that IPAM fills (SPEC, "Success": `ips`, `routes`, `dns`), and the
 * `routes`, `dns` and resolv.conf inputs that feed them.
 * @module
 */
import { parseCidr, parseGateway, parseIp } from '../validate.js'
import { listAt, objectAt, optStringAt, optStringListAt, stringAt } from './fields.js'

export interface IpConfig {
  /** With the subnet's prefix length: "10.1.0.10/24". */
  address: string
  gateway?: string
  /** Index into the Result's `interfaces`; IPAM leaves it to the plugin that made them. */
  interface?: number
}

export interface Route {
  dst: string
  gw?: string
}

export interface Dns {
  nameservers?: string[]
  domain?: string
  search?: string[]
  options?: string[]
}

export interface IpamResult {
  ips: IpConfig[]
  routes: Route[]
  dns: Dns
}

/** Parse `[{dst, gw?}]`: dst a CIDR, gw an address of the same family. */
export function parseRoutes(v: unknown, where: string): Route[] {
  return listAt(v, where).map((raw, i) => {
    const at = `${where}[${i}]`
    const o = objectAt(raw, at)
    const dst = stringAt(o.dst, `${at}.dst`)
    const { family } = parseCidr(dst, `${at}.dst`, true)
    const gw = optStringAt(o, 'gw', at)
    if (gw === undefined) return { dst }
    return { dst, gw: parseGateway(gw, family, dst, `${at}.gw`) }
  })
}

function dnsOf(
  nameservers: string[] | undefined,
  domain: string | undefined,
  search: string[] | undefined,
  options: string[] | undefined,
): Dns {
  const dns: Dns = {}
  if (nameservers?.length) dns.nameservers = nameservers
  if (domain) dns.domain = domain
  if (search?.length) dns.search = search
  if (options?.length) dns.options = options
  return dns
}

/** Parse `{nameservers?, domain?, search?, options?}`; nameservers must be addresses. */
export function parseDns(v: unknown, where: string): Dns {
  const o = objectAt(v, where)
  const nameservers = optStringListAt(o, 'nameservers', where)
  nameservers?.forEach((n, i) => parseIp(n, `${where}.nameservers[${i}]`))
  return dnsOf(
    nameservers,
    optStringAt(o, 'domain', where),
    optStringListAt(o, 'search', where),
    optStringListAt(o, 'options', where),
  )
}

/**
 * The DNS settings of a resolv.conf text (`nameserver`, `domain`, `search`, `options` lines),
 * what host-local's `resolvConf` field asks for.
 */
export function parseResolvConf(text: string): Dns {
  const nameservers: string[] = []
  const search: string[] = []
  const options: string[] = []
  let domain: string | undefined
  for (const line of text.split('\n')) {
    const [key, ...args] = line.trim().split(/\s+/)
    if (key === 'nameserver' && args[0]) nameservers.push(args[0])
    else if (key === 'domain' && args[0]) domain = args[0]
    else if (key === 'search') search.push(...args)
    else if (key === 'options') options.push(...args)
  }
  return dnsOf(nameservers, domain, search, options)
}
