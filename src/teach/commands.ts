/**
 * Teaching mode: each Op rendered as the iproute2, sysctl, nft or ovs-vsctl command a learner
 * would type for it, so that the lines, pasted into a fresh root shell, build the same state
 * (test/root/teach-paste.root.test.ts runs them). The mapped type makes an Op kind without a
 * formatter a compile error.
 * @module
 */
import type { MountFields, Op, RouteFields } from '../op.js'
import { quote as q, quoteArgv } from './quote.js'

/** `ip [-6] [-n NS]`: `ip -n` selects a named namespace. */
const ip = (ns: string | undefined, family?: 4 | 6): string =>
  `ip${family === 6 ? ' -6' : ''}${ns ? ` -n ${q(ns)}` : ''}`

/** `ip ... route`: `-6` where neither dst nor via says IPv6 (iproute2 assumes IPv4). */
const ipRoute = (o: RouteFields): string =>
  `${ip(o.ns, o.dst === 'default' && !o.via ? o.family : undefined)} route`

/**
 * Words `ip link` reads as keywords where a device name may stand; iproute2 also takes any
 * prefix of most of them ("m" is `mtu`). A name that could be one is printed after `dev` (or
 * `name` in `link add`), every other name bare, as people type it.
 */
const LINK_WORDS = (
  'add address addrgenmode allmulticast alias altname arp brd broadcast carrier change del ' +
  'delete dev down dynamic group gro_max_size gso_max_segs gso_max_size help index link ' +
  'link-netns link-netnsid master mode mtu multicast name netns nomaster numrxqueues ' +
  'numtxqueues parentdev peer promisc protodown protodown_reason qlen set show state trailers ' +
  'txqlen txqueuelen type up vf vrf xdp xdpdrv xdpgeneric xdpoffload'
).split(' ')
const keywordLike = (name: string): boolean => LINK_WORDS.some((w) => w.startsWith(name))
/** A device where `ip link set|del` expects one: `dev` only where the bare name is ambiguous. */
const dev = (name: string): string => (keywordLike(name) ? `dev ${q(name)}` : q(name))
/** The new device's name in `ip link add`. */
const newName = (name: string): string => (keywordLike(name) ? `name ${q(name)}` : q(name))

/** Which OVS printed ovs-vsctl lines talk to; `system`: the system's (no --db). */
const systemOvs = (): boolean => process.env.NSDN_EXPLAIN_OVS === 'system'
/** nsdn's private OVS is named by its run directory: `--db=unix:DIR/db.sock`. */
const PRIVATE_DB = /^--db=unix:(.+)\/db\.sock$/

/**
 * ovs-vsctl's arguments as a person types them: without `--timeout` (nsdn's guard against a
 * hung daemon) and without `--db` for nsdn's private OVS, which `OVS_RUNDIR` names instead
 * (ovs-vsctl's default database is `$OVS_RUNDIR/db.sock`; see {@link explainLines}).
 */
function vsctlArgs(argv: readonly string[]): { args: string[]; runDir?: string } {
  let runDir: string | undefined
  const args = argv.filter((a) => {
    if (a.startsWith('--timeout=')) return false
    const m = PRIVATE_DB.exec(a)
    if (m) runDir = m[1]
    return !m && !(systemOvs() && a.startsWith('--db='))
  })
  return { args, ...(runDir !== undefined ? { runDir } : {}) }
}

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

// MS_* bits as mount(8) options (values of src/ffi/libc.ts MS)
const MOUNT_OPTS: Array<[number, string]> = [
  [1, 'ro'],
  [2, 'nosuid'],
  [4, 'nodev'],
  [8, 'noexec'],
  [32, 'remount'],
]
const MS_BIND = 4096
const MS_REC = 16384
const PROPAGATION: Array<[number, string]> = [
  [1 << 18, 'private'],
  [1 << 19, 'slave'],
  [1 << 20, 'shared'],
]

/** A mount(2) call as the mount(8) line that makes it. */
function formatMount(o: MountFields): string {
  const rec = o.flags & MS_REC ? 'r' : ''
  const prop = PROPAGATION.find(([bit]) => o.flags & bit)
  if (prop) return `mount --make-${rec}${prop[1]} ${q(o.target)}`
  const opts = MOUNT_OPTS.filter(([bit]) => o.flags & bit).map(([, n]) => n)
  if (o.flags & MS_BIND) opts.push(`${rec}bind`)
  if (o.data) opts.push(o.data)
  let s = 'mount'
  if (o.fstype) s += ` -t ${q(o.fstype)}`
  if (opts.length) s += ` -o ${q(opts.join(','))}`
  // a remount names only the target
  const source = o.source ? `${q(o.source)} ` : o.flags & 32 ? '' : 'none '
  return `${s} ${source}${q(o.target)}`
}

/** A rate as tc writes it: 10000000 -> 10mbit. */
export function tcRate(bits: number): string {
  for (const [unit, n] of [
    ['gbit', 1e9],
    ['mbit', 1e6],
    ['kbit', 1e3],
  ] as const)
    if (bits >= n && bits % n === 0) return `${bits / n}${unit}`
  return `${bits}bit`
}

const formatters: { [K in Op['kind']]: (op: Extract<Op, { kind: K }>) => string } = {
  'netns.add': (o) => `ip netns add ${q(o.name)}`,
  'netns.del': (o) => `ip netns del ${q(o.name)}`,
  'netns.attach': (o) => `ip netns attach ${q(o.name)} ${o.pid}`,
  'link.add': (o) =>
    `${ip(o.ns)} link add ${newName(o.name)}${o.group ? ` group ${o.group}` : ''}` +
    `${o.master ? ` master ${q(o.master)}` : ''}${o.up ? ' up' : ''} type ${o.type}` +
    `${o.vlanFiltering ? ' vlan_filtering 1' : ''}${o.mcastSnooping === false ? ' mcast_snooping 0' : ''}`,
  'link.add.veth': (o) => {
    const qs = o.queues === undefined ? '' : ` numtxqueues ${o.queues} numrxqueues ${o.queues}`
    const g = o.group ? ` group ${o.group}` : ''
    let s = `${ip(o.ns)} link add ${newName(o.name)}${g}${qs}${o.master ? ` master ${q(o.master)}` : ''}`
    s += `${o.up ? ' up' : ''} type veth peer name ${q(o.peer)}${qs}`
    if (o.peerNs) s += ` netns ${q(o.peerNs)}`
    return s
  },
  'link.add.macvlan': (o) =>
    `${ip(o.ns)} link add ${newName(o.name)} link ${q(o.parent)} type macvlan mode ${o.mode}`,
  'link.add.vxlan': (o) => {
    const v = o.vxlan
    let s = `${ip(o.ns)} link add ${newName(o.name)} type vxlan id ${v.id}`
    if (v.remote) s += ` remote ${q(v.remote)}`
    if (v.group) s += ` group ${q(v.group)}`
    if (v.local) s += ` local ${q(v.local)}`
    if (v.dev) s += ` dev ${q(v.dev)}`
    if (v.dstport !== undefined) s += ` dstport ${v.dstport}`
    return s
  },
  'link.add.vlan': (o) =>
    `${ip(o.ns)} link add link ${q(o.parent)} name ${q(o.name)} type vlan id ${o.id}`,
  'link.del': (o) => `${ip(o.ns)} link del ${dev(o.name)}`,
  'link.del.group': (o) => `${ip(o.ns)} link del group ${o.group}`,
  'link.set': (o) => {
    let s = `${ip(o.ns)} link set ${dev(o.name)}`
    if (o.master === null) s += ' nomaster'
    else if (o.master) s += ` master ${q(o.master)}`
    if (o.mtu !== undefined) s += ` mtu ${o.mtu}`
    if (o.address) s += ` address ${o.address}`
    if (o.newName) s += ` name ${q(o.newName)}`
    if (o.netns) s += ` netns ${q(o.netns)}`
    if (o.addrgenmode) s += ` addrgenmode ${o.addrgenmode}`
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
  'route.add': (o) => `${ipRoute(o)} add ${routeArgs(o)}`,
  'route.replace': (o) => `${ipRoute(o)} replace ${routeArgs(o)}`,
  'route.del': (o) => `${ipRoute(o)} del ${routeArgs(o)}`,
  'sysctl.set': (o) =>
    (o.ns ? `ip netns exec ${q(o.ns)} ` : '') + `sysctl -w ${q(`${o.key}=${o.value}`)}`,
  'ovs.vsctl': (o) => `ovs-vsctl ${quoteArgv(vsctlArgs(o.argv).args)}`,
  // nsdn keeps the daemons as its children; the lines are what a user types with --detach.
  'ovs.daemon': (o) => {
    const d = (f: string): string => q(`${o.runDir}/${f}`)
    const daemon = (name: string): string =>
      `--pidfile=${d(`${name}.pid`)} --log-file=${d(`${name}.log`)} --detach`
    if (o.action === 'stop')
      return [
        `ovs-appctl -t ${d('ovs-vswitchd.ctl')} exit --cleanup`,
        `ovs-appctl -t ${d('ovsdb-server.ctl')} exit`,
        `rm -rf ${q(o.runDir)}`,
      ].join('\n')
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
  'nft.script': (o) => `nft -f - <<'EOF'\n${o.script}\nEOF`,
  'netns.exec': (o) => `ip netns exec ${q(o.name)} ${quoteArgv(o.argv)}`,
  // sandbox-init.ts mounts /proc; the tmpfs on /run keeps `ip netns` names private.
  sandbox: (o) =>
    'unshare --net --mount --pid --fork --mount-proc --propagation private ' +
    `sh -c 'mount -t tmpfs nsdn-run /run && mount -t sysfs nsdn-sys /sys && exec "$@"' sh ` +
    quoteArgv(o.argv),
  'tc.qdisc.tbf': (o) =>
    `tc${o.ns ? ` -n ${q(o.ns)}` : ''} qdisc add dev ${q(o.dev)} root tbf rate ${tcRate(o.rate)} ` +
    `burst ${o.burst} latency ${o.latency}ms`,
  'tc.qdisc.del': (o) => `tc${o.ns ? ` -n ${q(o.ns)}` : ''} qdisc del dev ${q(o.dev)} root`,
  'tc.qdisc.show': (o) => `tc${o.ns ? ` -n ${q(o.ns)}` : ''} qdisc show`,
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
  'fs.write': (o) => `echo ${q(o.value)} > ${q(o.path)}`,
  'fs.mkdir': (o) => `mkdir -p ${q(o.path)}`,
  'fs.rmdir': (o) => `rmdir ${q(o.path)}${o.ifUnused ? ' 2>/dev/null || true' : ''}`,
  'fs.touch': (o) => `touch ${q(o.path)}`,
  'fs.symlink': (o) => `ln -s ${q(o.target)} ${q(o.path)}`,
  kill: (o) => `kill -${o.signal} ${o.pid}`,
  mount: (o) => formatMount(o),
  umount: (o) => `umount${o.lazy ? ' -l' : ''} ${q(o.target)}`,
  pivot_root: (o) => `cd ${q(o.root)} && pivot_root . . && umount -l . && cd /`,
  sethostname: (o) => `hostname ${q(o.name)}`,
  exec: (o) => `exec ${quoteArgv(o.argv)}`,
  container: (o) => formatContainer(o),
  copy: (o) => `cp -a ${q(o.from)} ${q(o.to)}`,
  untar: (o) => `tar -xpf ${q(o.file)} -C ${q(o.to)}`,
  rm: (o) => `rm -rf ${q(o.path)}`,
  // The runtime's steps need its init (a pid namespace, pivot_root): nsdn's own command.
  'container.run': (o) =>
    [
      `nsdn run -d --name ${q(o.name)} --image ${q(o.image)} --hostname ${q(o.hostname)}`,
      ...Object.entries(o.limits).map(([k, v]) => `${LIMIT_FLAGS[k] ?? `--${k}`} ${q(String(v))}`),
      ...o.env.map((e) => `-e ${q(e)}`),
      `-- ${quoteArgv(o.command)}`,
    ].join(' '),
  'container.rm': (o) => `nsdn rm -f ${q(o.name)}`,
}

/** `nsdn run`'s flag for each field of the runtime's limits model. */
const LIMIT_FLAGS: Record<string, string> = {
  memory: '--memory',
  memorySwap: '--memory-swap',
  cpus: '--cpus',
  cpuWeight: '--cpu-weight',
  cpusetCpus: '--cpuset-cpus',
  cpusetMems: '--cpuset-mems',
  pids: '--pids',
  ioWeight: '--io-weight',
}

/**
 * A container as one block to paste: `sh` joins the cgroups ($$ is its pid), then becomes
 * unshare, whose PID 1 in the new namespaces builds the root and becomes the payload. Detached:
 * setsid -f, output to the log; the lines after it wait for the named netns.
 */
function formatContainer(o: Extract<Op, { kind: 'container' }>): string {
  // one option per map line: "INNER OUTER COUNT" -> OUTER,INNER,COUNT
  const map = (opt: string, m: string | undefined): string =>
    (m ?? '')
      .split('\n')
      .map((l) => {
        const [inner, outer, count] = l.split(' ')
        return `${opt}=${outer},${inner},${count}`
      })
      .join(' ')
  const ns = o.ns.map((n) => {
    if (n === 'net' && o.netnsFile) return `--net=${q(o.netnsFile)}`
    if (n === 'user' && o.uidMap)
      return `--user ${map('--map-users', o.uidMap)} ${map('--map-groups', o.gidMap)}`
    return `--${n}`
  })
  const out: string[] = [
    '# the container: a shell joins its cgroups, then unshare makes its namespaces; PID 1 of the new ones builds the root and becomes the payload (nsdn-init also drops capabilities and sets no_new_privs)',
  ]
  if (o.ns.includes('user'))
    out.push('# --map-users/--map-groups run newuidmap/newgidmap (Debian package uidmap)')
  if (o.netnsFile)
    out.push(
      `mkdir -p ${q(o.netnsFile.slice(0, o.netnsFile.lastIndexOf('/')))} && touch ${q(o.netnsFile)}`,
    )
  out.push(o.log ? `setsid -f sh -e >>${q(o.log)} 2>&1 <<'EOF'` : `sh -e <<'EOF'`)
  for (const p of o.procs) out.push(`echo $$ > ${q(p)}`)
  out.push(`exec unshare ${ns.join(' ')} --fork sh -e <<'INIT'`)
  for (const [i, step] of o.steps.entries()) {
    if (i === o.steps.length - 1 && o.cwd && o.cwd !== '/') out.push(`cd ${q(o.cwd)}`)
    out.push(formatOp(step))
  }
  out.push('INIT', 'EOF')
  if (o.netnsFile && o.log) out.push(`until mountpoint -q ${q(o.netnsFile)}; do sleep 0.1; done`)
  return out.join('\n')
}

/** The command `op` stands for, ready to paste into a root shell. */
export function formatOp(op: Op): string {
  const f = formatters[op.kind] as (o: Op) => string
  return f(op)
}

/** The run directory the printed lines have exported as OVS_RUNDIR (a shell's, or ours). */
let exportedRunDir: string | undefined = process.env.OVS_RUNDIR

/** Said once, before the first line that needs it: which OVS the ovs-vsctl lines talk to. */
function ovsHeader(runDir: string): string[] {
  if (systemOvs() || exportedRunDir === runDir) return []
  exportedRunDir = runDir
  return [
    "# ovs-vsctl talks to nsdn's private Open vSwitch (nsdn ovs start), whose database" +
      ' is $OVS_RUNDIR/db.sock; NSDN_EXPLAIN_OVS=system prints the lines for the system one',
    `export OVS_RUNDIR=${q(runDir)}`,
  ]
}

/**
 * What --explain prints for `op`: its command, preceded where needed by what makes the lines
 * paste as they are (once per process: the OVS they talk to).
 */
export function explainLines(op: Op): string[] {
  if (op.kind === 'ovs.vsctl') {
    const { runDir } = vsctlArgs(op.argv)
    return [...(runDir !== undefined ? ovsHeader(runDir) : []), formatOp(op)]
  }
  if (op.kind === 'ovs.daemon' && op.action === 'start')
    return [formatOp(op), ...ovsHeader(op.runDir)]
  if (op.kind === 'ovs.daemon') exportedRunDir = undefined
  return [formatOp(op)]
}
