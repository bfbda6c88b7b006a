/**
 * static IPAM: hands out the addresses the config lists, as the reference static plugin does.
 * Nothing is stored, so DEL has nothing to do.
 * @module
 */
import { ConfigError } from '../errors.js'
import { parseCidr, parseGateway } from '../validate.js'
import { parseAddr, refuseSpecial } from './range.js'
import { listAt, objectAt, optStringAt, stringAt, type JsonObject } from './fields.js'
import { type Dns, type IpConfig, type IpamResult, type Route } from './result.js'
import { parseDns, parseRoutes } from './result.js'

export interface StaticConf {
  type: 'static'
  addresses: IpConfig[]
  routes: Route[]
  dns: Dns
}

/** Parse a static `ipam` object: `addresses` [{address (CIDR), gateway?}], `routes`, `dns`. */
export function parseStaticConf(o: JsonObject, where: string): StaticConf {
  const list = listAt(o.addresses ?? [], `${where}.addresses`)
  if (list.length === 0)
    throw new ConfigError('no addresses', `${where}.addresses`, {
      hint: 'add "addresses": [{"address": "10.0.0.1/24", "gateway": "10.0.0.254"}]',
    })
  const addresses = list.map((raw, i): IpConfig => {
    const at = `${where}.addresses[${i}]`
    const a = objectAt(raw, at)
    const address = stringAt(a.address, `${at}.address`)
    const { family, prefixLen } = parseCidr(address, `${at}.address`, true)
    const host = parseAddr(address.split('/')[0], `${at}.address`)
    refuseSpecial(host, prefixLen, `address ${address}`, `${at}.address`)
    const gateway = optStringAt(a, 'gateway', at)
    if (gateway === undefined) return { address }
    return { address, gateway: parseGateway(gateway, family, address, `${at}.gateway`) }
  })
  return {
    type: 'static',
    addresses,
    routes: o.routes === undefined ? [] : parseRoutes(o.routes, `${where}.routes`),
    dns: o.dns === undefined ? {} : parseDns(o.dns, `${where}.dns`),
  }
}

/** The Result pieces of a static config (copies: callers may change them). */
export function staticResult(conf: StaticConf): IpamResult {
  return structuredClone({ ips: conf.addresses, routes: conf.routes, dns: conf.dns })
}
