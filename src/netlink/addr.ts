/**
 * Addresses: add, replace, delete, list; IPv4 and IPv6.
 * @module
 */
import type { NetlinkMessage } from 'netlink'
import { type Cidr, parseCidr } from '../validate.js'
import { type LinkRef, linkByName } from './link.js'
import type { Rtnl } from './rtnl.js'
import { decodeAttrs, ipText } from './wire/attr.js'
import * as K from './wire/constants.js'
import * as W from './wire/messages.js'

export interface Addr {
  index: number
  family: 4 | 6
  address: string
  prefixLen: number
  /** RT_SCOPE_*: 0 universe (global), 253 link, 254 host. */
  scope: number
  /** ip -j's "local"+"prefixlen" as one string. */
  cidr: string
}

export interface AddrOpts {
  /** IPv6: skip duplicate address detection so the address is usable at once. */
  nodad?: boolean
}

const nsOf = (h: Rtnl): { ns?: string } => (h.nsName ? { ns: h.nsName } : {})

async function addrChange(
  h: Rtnl,
  verb: W.AddrVerb,
  cidr: string | Cidr,
  dev: LinkRef,
  o: AddrOpts,
): Promise<void> {
  const c = typeof cidr === 'string' ? parseCidr(cidr, 'address', true) : cidr
  const l = typeof dev === 'string' ? await linkByName(h, dev) : dev
  const text = `${c.address}/${c.prefixLen}`
  // DAD is IPv6's: on IPv4 the flag means nothing (and iproute2 warns about it).
  const nodad = o.nodad === true && c.family === 6
  await h.exec(
    {
      kind: `addr.${verb}`,
      ...nsOf(h),
      cidr: text,
      dev: l.name,
      ...(nodad ? { nodad } : {}),
    },
    () =>
      h
        .request(
          W.addrRequest(verb, {
            index: l.index,
            address: c.address,
            prefixLen: c.prefixLen,
            ...(nodad ? { nodad } : {}),
          }),
        )
        .then(() => undefined),
    undefined,
  )
}

/** Equivalent: `ip addr add CIDR dev DEV`. */
export const addrAdd = (
  h: Rtnl,
  cidr: string | Cidr,
  dev: LinkRef,
  o: AddrOpts = {},
): Promise<void> => addrChange(h, 'add', cidr, dev, o)
/** Equivalent: `ip addr replace CIDR dev DEV`. */
export const addrReplace = (
  h: Rtnl,
  cidr: string | Cidr,
  dev: LinkRef,
  o: AddrOpts = {},
): Promise<void> => addrChange(h, 'replace', cidr, dev, o)
/** Equivalent: `ip addr del CIDR dev DEV`. */
export const addrDel = (h: Rtnl, cidr: string | Cidr, dev: LinkRef): Promise<void> =>
  addrChange(h, 'del', cidr, dev, {})

/**
 * Decode an RTM_NEWADDR / RTM_DELADDR message, by hand (ifaddrmsg: family, prefix length,
 * flags, scope, then the index at offset 4; the attributes after its 8 bytes; the package's
 * parser costs more to load than a plugin call spends on addresses); undefined when it
 * carries no address.
 */
export function toAddr(m: NetlinkMessage): Addr | undefined {
  const d = m.data
  const attrs = decodeAttrs(d.subarray(8))
  const bytes = attrs.get(K.IFA_LOCAL) ?? attrs.get(K.IFA_ADDRESS)
  if (!bytes) return undefined
  const address = ipText(bytes)
  const prefixLen = d.readUInt8(1)
  return {
    index: d.readUInt32LE(4),
    family: d.readUInt8(0) === K.AF_INET ? 4 : 6,
    address,
    prefixLen,
    scope: d.readUInt8(3),
    cidr: `${address}/${prefixLen}`,
  }
}

/** Every address of the namespace (or of one link). Equivalent: `ip addr show [dev DEV]`. */
export async function addrList(h: Rtnl, dev?: LinkRef): Promise<Addr[]> {
  const l = typeof dev === 'string' ? await linkByName(h, dev) : dev
  const msgs = await h.exec(
    { kind: 'addr.show', ...nsOf(h), ...(l ? { dev: l.name } : {}) },
    () => h.dump(W.getAddrs()),
    [],
  )
  const out: Addr[] = []
  for (const m of msgs) {
    if (m.type !== K.RTM_NEWADDR) continue
    const a = toAddr(m)
    if (!a || (l && a.index !== l.index)) continue
    out.push(a)
  }
  return out
}
