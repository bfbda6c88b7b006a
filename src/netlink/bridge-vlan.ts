/**
 * Per-port VLANs of a VLAN-filtering Linux bridge: RTM_SETLINK with family AF_BRIDGE and an
 * IFLA_AF_SPEC { IFLA_BRIDGE_VLAN_INFO { flags, vid } }, as `bridge vlan add` sends it.
 * @module
 */
import { parseIntIn } from '../validate.js'
import { type LinkRef, linkByName, linkFeatureError } from './link.js'
import { NetlinkErrno, type Rtnl } from './rtnl.js'
import * as K from './wire/constants.js'
import * as W from './wire/messages.js'

export interface BridgeVlanOpts {
  /** Untagged frames entering the port belong to this VLAN. */
  pvid?: boolean
  /** Frames of this VLAN leave the port without a tag. */
  untagged?: boolean
}

/**
 * Make the bridge port dev a member of VLAN vid. Without kernel support the bridge refuses
 * it with EOPNOTSUPP, reported as a KernelFeatureError naming the option.
 * Equivalent: `bridge vlan add dev DEV vid VID [pvid] [untagged]`.
 */
export async function bridgeVlanAdd(
  h: Rtnl,
  dev: LinkRef,
  vid: number,
  o: BridgeVlanOpts = {},
): Promise<void> {
  parseIntIn(vid, 1, 4094, 'vid')
  const l = typeof dev === 'string' ? await linkByName(h, dev) : dev
  const flags =
    (o.pvid ? K.BRIDGE_VLAN_INFO_PVID : 0) | (o.untagged ? K.BRIDGE_VLAN_INFO_UNTAGGED : 0)
  await h.exec(
    {
      kind: 'bridge.vlan.add',
      ...(h.nsName ? { ns: h.nsName } : {}),
      dev: l.name,
      vid,
      ...(o.pvid ? { pvid: true } : {}),
      ...(o.untagged ? { untagged: true } : {}),
    },
    async () => {
      try {
        await h.request(W.bridgeVlanAdd(l.index, vid, flags))
      } catch (err) {
        // A port of a bridge refuses VLANs only when the kernel lacks filtering; a link that
        // is no bridge port refuses them with the same errno.
        if (err instanceof NetlinkErrno && err.errno === 'EOPNOTSUPP') {
          const now = await linkByName(h, l.name)
          if (now.master !== undefined) throw linkFeatureError('bridge-vlan-filtering')
        }
        throw err
      }
    },
    undefined,
  )
}
