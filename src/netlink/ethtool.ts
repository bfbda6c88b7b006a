/**
 * Device features (offloads) through the ethtool generic netlink family, as `ethtool -K` sets
 * them. Devices are found by name in the namespace the socket is opened in, so the socket is
 * opened inside a window of the target namespace, used once and closed.
 * @module
 */
import { createGenericNetlink } from 'netlink/dist/genl/genl'
import * as genl from 'netlink/dist/genl/structs'
import { KernelError, KernelFeatureError, codeForErrno } from '../errors.js'
import { errnoName } from '../ffi/libc.js'
import { type NetNs, runInNetnsSync } from '../netns/netns.js'
import { type Op, runOp } from '../op.js'
import { formatOp } from '../teach/commands.js'
import { validIfName } from '../validate.js'
import * as K from './wire/constants.js'
import { ETHTOOL_GENL_NAME, featuresSet } from './wire/ethtool.js'

/** The errno name out of the package's "Request rejected: ENOENT" text. */
const rejected = (err: unknown): string | undefined =>
  /Request rejected: (\w+)/.exec(String(err))?.[1]

/**
 * Turn device features on or off by their ethtool names (`tx-checksum-ip-generic`).
 * Equivalent: `[ip netns exec NS] ethtool -K DEV NAME on|off ...`.
 */
export async function ethtoolFeaturesSet(
  ns: NetNs,
  dev: string,
  features: Readonly<Record<string, boolean>>,
): Promise<void> {
  validIfName(dev)
  const op: Op = { kind: 'ethtool.features', ...(ns.name ? { ns: ns.name } : {}), dev, features }
  await runOp(
    op,
    async () => {
      const sock = runInNetnsSync(ns, () => createGenericNetlink())
      try {
        const family = await sock
          .ctrlRequest(genl.Commands.GET_FAMILY, { familyName: ETHTOOL_GENL_NAME })
          .catch((err: unknown) => {
            if (rejected(err) !== 'ENOENT') throw err
            return []
          })
        const id = family[0]?.familyId
        if (id === undefined)
          throw new KernelFeatureError('ethtool netlink', 'CONFIG_ETHTOOL_NETLINK', 'none')
        const [msgs] = await sock.socket.request(id, featuresSet(dev, features), {
          checkError: false,
        })
        const err = msgs.find((m) => m.type === K.NLMSG_ERROR && m.data.readInt32LE(0) !== 0)
        if (err) {
          const errno = errnoName(-err.data.readInt32LE(0))
          const command = formatOp(op)
          throw new KernelError(codeForErrno(errno), `${command}: ${errno}`, errno, command)
        }
      } finally {
        sock.socket.close()
      }
    },
    undefined,
  )
}
