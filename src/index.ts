/**
 * nsdn's public library surface, for scripts and third-party drivers (`require('nsdn')`).
 * @module
 */
export * from './errors.js'
export { opMode } from './op.js'
export type { Op } from './op.js'
export { formatOp } from './teach/commands.js'
export * from './netns/netns.js'
export { Rtnl } from './netlink/rtnl.js'
export * from './netlink/link.js'
export * from './netlink/addr.js'
export * from './netlink/route.js'
export * from './netlink/neigh.js'
export { sysctlGet, sysctlSet } from './sysctl.js'
export { runSandboxed } from './sandbox.js'
export type * from './drivers/api.js'
export { getDriver, listDrivers, addDriverDir } from './drivers/registry.js'
export { Rollback, failpoint } from './drivers/rollback.js'
export * from './drivers/veth.js'
