/**
 * Requests of the ethtool generic netlink family (include/uapi/linux/ethtool_netlink.h), in
 * the attribute order `ethtool -K` sends them. Unlike rtnetlink, the family validates strictly:
 * nested attributes must carry NLA_F_NESTED.
 * @module
 */
import { type Attr, encodeAttrs, nest, strz, u32 } from './attr.js'

export const ETHTOOL_GENL_NAME = 'ethtool'
const ETHTOOL_GENL_VERSION = 1
const ETHTOOL_MSG_FEATURES_SET = 12

const NLA_F_NESTED = 0x8000
const ETHTOOL_A_HEADER_DEV_NAME = 2
const ETHTOOL_A_HEADER_FLAGS = 3
/** No reply message beyond the ACK. */
const ETHTOOL_FLAG_OMIT_REPLY = 1 << 1
const ETHTOOL_A_FEATURES_HEADER = 1
const ETHTOOL_A_FEATURES_WANTED = 3
const ETHTOOL_A_BITSET_BITS = 3
const ETHTOOL_A_BITSET_BITS_BIT = 1
const ETHTOOL_A_BITSET_BIT_NAME = 2
const ETHTOOL_A_BITSET_BIT_VALUE = 3

const nested = (type: number, attrs: Attr[]): Attr => nest(type | NLA_F_NESTED, attrs)

/**
 * struct genlmsghdr + attributes of ETHTOOL_MSG_FEATURES_SET: a bit set without NOMASK, so only
 * the features named change; a bit without the VALUE flag is turned off.
 */
export function featuresSet(dev: string, features: Readonly<Record<string, boolean>>): Buffer {
  const hdr = Buffer.from([ETHTOOL_MSG_FEATURES_SET, ETHTOOL_GENL_VERSION, 0, 0])
  const bits = Object.entries(features).map(([name, on]) =>
    nested(ETHTOOL_A_BITSET_BITS_BIT, [
      strz(ETHTOOL_A_BITSET_BIT_NAME, name),
      ...(on ? [{ type: ETHTOOL_A_BITSET_BIT_VALUE, data: Buffer.alloc(0) }] : []),
    ]),
  )
  const attrs = [
    nested(ETHTOOL_A_FEATURES_HEADER, [
      strz(ETHTOOL_A_HEADER_DEV_NAME, dev),
      u32(ETHTOOL_A_HEADER_FLAGS, ETHTOOL_FLAG_OMIT_REPLY),
    ]),
    nested(ETHTOOL_A_FEATURES_WANTED, [nested(ETHTOOL_A_BITSET_BITS, bits)]),
  ]
  return Buffer.concat([hdr, encodeAttrs(attrs)])
}
