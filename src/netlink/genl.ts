/**
 * Generic netlink probes: whether a family (a kernel module's netlink API) is registered.
 * Families are global, so the namespace the socket is opened in does not matter.
 * @module
 */
import { createGenericNetlink } from 'netlink/dist/genl/genl'
import * as genl from 'netlink/dist/genl/structs'
import { KernelError, codeForErrno } from '../errors.js'

/**
 * True when the generic netlink family `name` exists, e.g. `ovs_datapath` once the openvswitch
 * kernel module is loaded. Similar to: `genl ctrl get name NAME`.
 */
export async function genlFamilyExists(name: string): Promise<boolean> {
  const sock = createGenericNetlink()
  try {
    const reply = await sock.ctrlRequest(genl.Commands.GET_FAMILY, { familyName: name })
    return reply.some((m) => m.familyName === name)
  } catch (err) {
    // The package reports a refusal only as text: "Request rejected: ENOENT".
    const errno = /Request rejected: (\w+)/.exec(String(err))?.[1]
    if (errno === 'ENOENT') return false
    if (errno === undefined) throw err
    const command = `genl ctrl get name ${name}`
    throw new KernelError(codeForErrno(errno), `${command}: ${errno}`, errno, command, {
      cause: err,
    })
  } finally {
    sock.socket.close()
  }
}
