/**
 * Kernel constants of rtnetlink, spelled as in the uapi headers (linux/rtnetlink.h,
 * linux/if_link.h, linux/if_addr.h, linux/neighbour.h, linux/if_bridge.h). Only wire/ uses
 * these spellings; the rest of nsdn speaks in camelCase.
 * @module
 */

export const NLMSG_ERROR = 2
export const NLMSG_DONE = 3

export const NLM_F_REQUEST = 0x01
export const NLM_F_ACK = 0x04
export const NLM_F_ECHO = 0x08
export const NLM_F_DUMP_INTR = 0x10
export const NLM_F_DUMP = 0x300
export const NLM_F_REPLACE = 0x100
export const NLM_F_EXCL = 0x200
export const NLM_F_CREATE = 0x400

export const RTM_NEWLINK = 16
export const RTM_DELLINK = 17
export const RTM_GETLINK = 18
export const RTM_SETLINK = 19
export const RTM_NEWADDR = 20
export const RTM_DELADDR = 21
export const RTM_GETADDR = 22
export const RTM_NEWROUTE = 24
export const RTM_DELROUTE = 25
export const RTM_GETROUTE = 26
export const RTM_NEWNEIGH = 28
export const RTM_GETNEIGH = 30

export const AF_UNSPEC = 0
export const AF_INET = 2
export const AF_BRIDGE = 7
export const AF_INET6 = 10

export const IFF_UP = 0x1

export const IFLA_ADDRESS = 1
export const IFLA_IFNAME = 3
export const IFLA_MTU = 4
export const IFLA_LINK = 5
export const IFLA_MASTER = 10
export const IFLA_OPERSTATE = 16
export const IFLA_LINKINFO = 18
export const IFLA_AF_SPEC = 26
export const IFLA_GROUP = 27
export const IFLA_NET_NS_FD = 28
export const IFLA_EXT_MASK = 29
export const IFLA_NUM_TX_QUEUES = 31
export const IFLA_NUM_RX_QUEUES = 32

/** Inside IFLA_AF_SPEC { AF_INET6 }: how the link-local address is made. */
export const IFLA_INET6_ADDR_GEN_MODE = 8
export const IN6_ADDR_GEN_MODE = { eui64: 0, none: 1 } as const

export const IFLA_INFO_KIND = 1
export const IFLA_INFO_DATA = 2

export const VETH_INFO_PEER = 1

export const IFLA_VLAN_ID = 1

export const IFLA_MACVLAN_MODE = 1
export const MACVLAN_MODE = { private: 1, vepa: 2, bridge: 4, passthru: 8, source: 16 } as const

export const IFLA_VXLAN_ID = 1
export const IFLA_VXLAN_GROUP = 2
export const IFLA_VXLAN_LINK = 3
export const IFLA_VXLAN_LOCAL = 4
export const IFLA_VXLAN_LEARNING = 7
export const IFLA_VXLAN_PORT = 15
export const IFLA_VXLAN_GROUP6 = 16
export const IFLA_VXLAN_LOCAL6 = 17

export const IFLA_BR_VLAN_FILTERING = 7
export const IFLA_BR_MCAST_SNOOPING = 23

export const IFLA_BRIDGE_VLAN_INFO = 2
export const BRIDGE_VLAN_INFO_PVID = 0x2
export const BRIDGE_VLAN_INFO_UNTAGGED = 0x4

export const IFA_ADDRESS = 1
export const IFA_LOCAL = 2
export const IFA_F_NODAD = 0x02

export const RTA_DST = 1
export const RTA_OIF = 4
export const RTA_GATEWAY = 5
export const RTA_PRIORITY = 6
export const RTA_PREFSRC = 7
export const RTA_TABLE = 15

export const RT_TABLE_MAIN = 254
export const RTPROT_UNSPEC = 0
export const RTPROT_BOOT = 3
export const RT_SCOPE_UNIVERSE = 0
export const RT_SCOPE_LINK = 253
export const RT_SCOPE_HOST = 254
export const RT_SCOPE_NOWHERE = 255
export const RTN_UNSPEC = 0
export const RTN_UNICAST = 1

export const RTEXT_FILTER_VF = 1
export const RTEXT_FILTER_SKIP_STATS = 8

export const IFF_PROMISC = 0x100
export const IFLA_INFO_SLAVE_DATA = 5
export const IFLA_BRPORT_MODE = 4
