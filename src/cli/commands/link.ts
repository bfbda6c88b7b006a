/**
 * `nsdn link add|set|del|list`: network devices, in iproute2's keyword syntax.
 * @module
 */
import type { Command } from 'commander'
import {
  type Link,
  type LinkRef,
  linkAddBridge,
  linkAddMacvlan,
  linkAddVeth,
  linkAddVlan,
  linkAddVxlan,
  linkByName,
  linkDel,
  linkList,
  linkSet,
} from '../../netlink/link.js'
import type { Rtnl } from '../../netlink/rtnl.js'
import { NetNs } from '../../netns/netns.js'
import { opMode } from '../../op.js'
import {
  LINK_ADD_USAGE,
  LINK_SET_USAGE,
  type LinkAddSpec,
  parseLinkAdd,
  parseLinkDel,
  parseLinkSet,
} from '../args.js'
import { examples, globals, handle, needsRoot } from '../context.js'
import { printJson, printTable } from '../output.js'

/** IF_OPER_* names, as `ip link` prints them. */
const OPER_STATE = ['UNKNOWN', 'NOTPRESENT', 'DOWN', 'LOWERLAYERDOWN', 'TESTING', 'DORMANT', 'UP']

/** Open a named namespace for the length of fn (a veth peer's or a move's target). */
async function withNs<T>(name: string | undefined, fn: (ns?: NetNs) => Promise<T>): Promise<T> {
  const ns = name === undefined ? undefined : NetNs.open(name)
  try {
    return await fn(ns)
  } finally {
    ns?.close()
  }
}

async function linkAdd(h: Rtnl, s: LinkAddSpec): Promise<void> {
  // Look the bridge up first: a missing one must fail before anything is created.
  const master = s.master === undefined ? undefined : await linkByName(h, s.master)
  const common = { ...(s.up ? { up: true } : {}), ...(master ? { master } : {}) }
  switch (s.type) {
    case 'bridge':
      return linkAddBridge(h, s.name, common)
    case 'veth':
      await withNs(s.peerNs, (peerNs) =>
        linkAddVeth(h, s.name, s.peer, { ...common, ...(peerNs ? { peerNs } : {}) }),
      )
      return
    case 'macvlan':
      await linkAddMacvlan(h, s.name, s.parent, s.mode)
      break
    case 'vxlan':
      await linkAddVxlan(h, s.name, s.vxlan)
      break
    case 'vlan':
      await linkAddVlan(h, s.name, s.parent, s.id)
      break
  }
  if (!s.up && !master) return
  // These kinds take no master or up in the create request: a second step, undone on failure.
  const ref: LinkRef = opMode.dryRun ? { index: 0, name: s.name } : await linkByName(h, s.name)
  try {
    await linkSet(h, ref, common)
  } catch (err) {
    await linkDel(h, ref).catch(() => undefined)
    throw err
  }
}

function printLinks(links: Link[]): void {
  const byIndex = new Map(links.map((l) => [l.index, l.name]))
  printTable(
    ['INDEX', 'NAME', 'KIND', 'STATE', 'MASTER', 'MTU', 'MAC'],
    links.map((l) => [
      l.index,
      l.name,
      l.kind,
      OPER_STATE[l.operstate ?? 0] ?? String(l.operstate),
      l.master === undefined ? undefined : (byIndex.get(l.master) ?? l.master),
      l.mtu,
      l.address,
    ]),
  )
}

export function register(program: Command): void {
  const link = program.command('link').description('network devices: add, set, delete, list')
  examples(
    link,
    'nsdn link add br0 up type bridge',
    'nsdn link add v-h1 master br0 up type veth peer eth0 netns h1',
    'nsdn -n h1 link set eth0 up',
    'nsdn link list',
  )

  const add = link
    .command('add')
    .description('create a device: bridge, veth pair, macvlan, vxlan or vlan')
    .argument('<args...>', LINK_ADD_USAGE)
    .action(async (words: string[], _o: unknown, cmd: Command) => {
      const spec = parseLinkAdd(words)
      await linkAdd(handle(cmd), spec)
    })
  examples(
    needsRoot(add),
    'nsdn link add br0 up type bridge',
    'nsdn link add v-h1 master br0 up type veth peer eth0 netns h1',
    'nsdn link add mv0 type macvlan link eth0 mode bridge',
    'nsdn link add vx0 type vxlan id 42 remote 192.0.2.2 dstport 4789',
    'nsdn link add eth0.100 type vlan link eth0 id 100',
  )

  const set = link
    .command('set')
    .description('change a device: up/down, bridge, MTU, MAC, namespace, name (several at once)')
    .argument('<args...>', LINK_SET_USAGE)
    .action(async (words: string[], _o: unknown, cmd: Command) => {
      const { name, master, netns, ...rest } = parseLinkSet(words)
      await withNs(netns, (target) =>
        linkSet(handle(cmd), name, {
          ...rest,
          ...(master !== undefined ? { master } : {}),
          ...(target ? { netns: target } : {}),
        }),
      )
    })
  examples(
    needsRoot(set),
    'nsdn link set v-h1 up',
    'nsdn link set v-h1 master br0 mtu 1400 up',
    'nsdn link set v-h1 nomaster',
    'nsdn link set veth1 netns h1 name eth0',
  )

  const del = link
    .command('del')
    .alias('delete')
    .description('delete a device (a veth pair goes as a whole)')
    .argument('<args...>', '[dev] NAME')
    .action(async (words: string[], _o: unknown, cmd: Command) => {
      const name = parseLinkDel(words)
      await linkDel(handle(cmd), name)
    })
  examples(needsRoot(del), 'nsdn link del br0', 'nsdn -n h1 link del eth0')

  const list = link
    .command('list')
    .alias('show')
    .description('list the devices: index, name, kind, state, master, MTU, MAC')
    .action(async (_o: unknown, cmd: Command) => {
      const links = await linkList(handle(cmd))
      if (globals(cmd).json) printJson(links)
      else printLinks(links)
    })
  examples(needsRoot(list, 'netns'), 'nsdn link list', 'nsdn -n h1 --json link list')
}
