/**
 * Teaching mode: each Op rendered as the iproute2, sysctl or ovs-vsctl command a learner would
 * type for it. The mapped type makes an Op kind without a formatter a compile error.
 * @module
 */
import type { Op, RouteFields } from '../op.js'
import { quote as q, quoteArgv } from './quote.js'

/** `ip -n NS` prefix, as `ip -n` selects a named namespace. */
const ip = (ns: string | undefined): string => (ns ? `ip -n ${q(ns)}` : 'ip')

function routeArgs(o: RouteFields): string {
  let s = q(o.dst)
  if (o.via) s += ` via ${q(o.via)}`
  if (o.dev) s += ` dev ${q(o.dev)}`
  if (o.src) s += ` src ${q(o.src)}`
  if (o.metric !== undefined) s += ` metric ${o.metric}`
  if (o.table !== undefined) s += ` table ${o.table}`
  if (o.scope) s += ` scope ${o.scope}`
  return s
}

/** A rate as tc writes it: 10000000 -> 10mbit. */
function tcRate(bits: number): string {
  for (const [unit, n] of [['gbit', 1e9], ['mbit', 1e6], ['kbit', 1e3]] as const)
    if (bits >= n && bits % n === 0) return `${bits / n}${unit}`
  return `${bits}bit`
}

const formatters: { [K in Op['kind']]: (op: Extract<Op, { kind: K }>) => string } = {
  'netns.add': (o) => `ip netns add ${q(o.name)}`,
  'netns.del': (o) => `ip netns del ${q(o.name)}`,
  'link.add': (o) =>
    `${ip(o.ns)} link add ${q(o.name)}` +
    `${o.master ? ` master ${q(o.master)}` : ''}${o.up ? ' up' : ''} type ${o.type}` +
    `${o.vlanFiltering ? ' vlan_filtering 1' : ''}`,
  'link.add.veth': (o) => {
    let s = `${ip(o.ns)} link add ${q(o.name)}${o.master ? ` master ${q(o.master)}` : ''}`
    s += `${o.up ? ' up' : ''} type veth peer name ${q(o.peer)}`
    if (o.peerNs) s += ` netns ${q(o.peerNs)}`
    return s
  },
  'link.add.macvlan': (o) =>
    `${ip(o.ns)} link add ${q(o.name)} link ${q(o.parent)} type macvlan mode ${o.mode}`,
  'link.add.vxlan': (o) => {
    const v = o.vxlan
    let s = `${ip(o.ns)} link add ${q(o.name)} type vxlan id ${v.id}`
    if (v.remote) s += ` remote ${q(v.remote)}`
    if (v.group) s += ` group ${q(v.group)}`
    if (v.local) s += ` local ${q(v.local)}`
    if (v.dev) s += ` dev ${q(v.dev)}`
    if (v.dstport !== undefined) s += ` dstport ${v.dstport}`
    return s
  },
  'link.add.vlan': (o) =>
    `${ip(o.ns)} link add link ${q(o.parent)} name ${q(o.name)} type vlan id ${o.id}`,
  'link.del': (o) => `${ip(o.ns)} link del ${q(o.name)}`,
  'link.set': (o) => {
    let s = `${ip(o.ns)} link set ${q(o.name)}`
    if (o.master === null) s += ' nomaster'
    else if (o.master) s += ` master ${q(o.master)}`
    if (o.mtu !== undefined) s += ` mtu ${o.mtu}`
    if (o.address) s += ` address ${o.address}`
    if (o.newName) s += ` name ${q(o.newName)}`
    if (o.netns) s += ` netns ${q(o.netns)}`
    if (o.up !== undefined) s += o.up ? ' up' : ' down'
    return s
  },
  'link.set.bridge_slave': (o) =>
    `${ip(o.ns)} link set dev ${q(o.name)} type bridge_slave` +
    (o.hairpin !== undefined ? ` hairpin ${o.hairpin ? 'on' : 'off'}` : ''),
  'link.set.promisc': (o) => `${ip(o.ns)} link set dev ${q(o.name)} promisc ${o.on ? 'on' : 'off'}`,
  'addr.add': (o) => `${ip(o.ns)} addr add ${q(o.cidr)} dev ${q(o.dev)}${o.nodad ? ' nodad' : ''}`,
  'addr.replace': (o) =>
    `${ip(o.ns)} addr replace ${q(o.cidr)} dev ${q(o.dev)}${o.nodad ? ' nodad' : ''}`,
  'addr.del': (o) => `${ip(o.ns)} addr del ${q(o.cidr)} dev ${q(o.dev)}`,
  'route.add': (o) => `${ip(o.ns)} route add ${routeArgs(o)}`,
  'route.replace': (o) => `${ip(o.ns)} route replace ${routeArgs(o)}`,
  'route.del': (o) => `${ip(o.ns)} route del ${routeArgs(o)}`,
  'sysctl.set': (o) =>
    (o.ns ? `ip netns exec ${q(o.ns)} ` : '') + `sysctl -w ${q(`${o.key}=${o.value}`)}`,
  'ovs.vsctl': (o) => `ovs-vsctl ${quoteArgv(o.argv)}`,
  // nsdn keeps the daemons as its children; the lines are what a user types with --detach.
  'ovs.daemon': (o) => {
    const d = (f: string): string => q(`${o.runDir}/${f}`)
    const daemon = (name: string): string =>
      `--pidfile=${d(`${name}.pid`)} --log-file=${d(`${name}.log`)} --detach`
    if (o.action === 'stop')
      return (
        `ovs-appctl -t ${d('ovs-vswitchd.ctl')} exit --cleanup; ` +
        `ovs-appctl -t ${d('ovsdb-server.ctl')} exit`
      )
    return [
      `mkdir -p ${q(o.runDir)}`,
      `ovsdb-tool create ${d('conf.db')} /usr/share/openvswitch/vswitch.ovsschema`,
      `ovsdb-server --remote=punix:${d('db.sock')} --unixctl=${d('ovsdb-server.ctl')} ` +
        `${daemon('ovsdb-server')} ${d('conf.db')}`,
      `ovs-vsctl --db=unix:${d('db.sock')} --no-wait init`,
      `OVS_RUNDIR=${q(o.runDir)} ovs-vswitchd unix:${d('db.sock')} ` +
        `--unixctl=${d('ovs-vswitchd.ctl')} ${daemon('ovs-vswitchd')}`,
    ].join('\n')
  },
  nft: (o) =>
    (o.ns ? `ip netns exec ${q(o.ns)} ` : '') +
    `nft ${quoteArgv(o.argv)}` +
    (o.stdin !== undefined ? ` <<'EOF'\n${o.stdin}EOF` : ''),
  'tc.qdisc.tbf': (o) =>
    `tc${o.ns ? ` -n ${q(o.ns)}` : ''} qdisc add dev ${q(o.dev)} root tbf rate ${tcRate(o.rate)} ` +
    `burst ${o.burst} latency ${o.latency}ms`,
  'nft.show': (o) => `nft ${quoteArgv(o.argv)}`,
  'ovs.vsctl.show': (o) => `ovs-vsctl ${quoteArgv(o.argv)}`,
  'ethtool.features': (o) =>
    (o.ns ? `ip netns exec ${q(o.ns)} ` : '') +
    `ethtool -K ${q(o.dev)} ` +
    Object.entries(o.features)
      .map(([k, on]) => `${q(k)} ${on ? 'on' : 'off'}`)
      .join(' '),
  'bridge.vlan.add': (o) =>
    `bridge${o.ns ? ` -n ${q(o.ns)}` : ''} vlan add dev ${q(o.dev)} vid ${o.vid}` +
    `${o.pvid ? ' pvid' : ''}${o.untagged ? ' untagged' : ''}`,
  'link.show': (o) => `${ip(o.ns)} link show${o.dev ? ` dev ${q(o.dev)}` : ''}`,
  'addr.show': (o) => `${ip(o.ns)} addr show${o.dev ? ` dev ${q(o.dev)}` : ''}`,
  'route.show': (o) => `${ip(o.ns)} route show${o.dev ? ` dev ${q(o.dev)}` : ''}`,
  'neigh.show': (o) => `${ip(o.ns)} neigh show${o.dev ? ` dev ${q(o.dev)}` : ''}`,
}

/** The command `op` stands for, ready to paste into a root shell. */
export function formatOp(op: Op): string {
  const f = formatters[op.kind] as (o: Op) => string
  return f(op)
}
