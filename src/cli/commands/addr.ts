/**
 * `nsdn addr add|del|list`: IPv4 and IPv6 addresses on devices.
 * @module
 */
import type { Command } from 'commander'
import { addrAdd, addrDel, addrList } from '../../netlink/addr.js'
import { linkList } from '../../netlink/link.js'
import { ADDR_USAGE, parseAddr, parseAddrList } from '../args.js'
import { examples, globals, handle, needsRoot } from '../context.js'
import { printJson, printTable } from '../output.js'

/** RT_SCOPE_* names, as `ip addr` prints them. */
const SCOPES: Record<number, string> = { 0: 'global', 200: 'site', 253: 'link', 254: 'host' }

export function register(program: Command): void {
  const addr = program.command('addr').description('addresses: add, delete, list')
  examples(addr, 'nsdn -n h1 addr add 10.0.0.1/24 dev eth0', 'nsdn addr list')

  const add = addr
    .command('add')
    .description('add an address to a device')
    .argument('<args...>', ADDR_USAGE)
    .action(async (words: string[], _o: unknown, cmd: Command) => {
      const s = parseAddr('add', words)
      await addrAdd(handle(cmd), s.cidr, s.dev, s.nodad ? { nodad: true } : {})
    })
  examples(
    needsRoot(add),
    'nsdn addr add 10.0.0.1/24 dev br0',
    'nsdn -n h1 addr add fd00::2/64 dev eth0 nodad',
  )

  const del = addr
    .command('del')
    .alias('delete')
    .description('remove an address from a device')
    .argument('<args...>', ADDR_USAGE)
    .action(async (words: string[], _o: unknown, cmd: Command) => {
      const s = parseAddr('del', words)
      await addrDel(handle(cmd), s.cidr, s.dev)
    })
  examples(needsRoot(del), 'nsdn addr del 10.0.0.1/24 dev br0')

  const list = addr
    .command('list')
    .alias('show')
    .description('list addresses: device, family, address, scope')
    .argument('[args...]', '[dev NAME]')
    .action(async (words: string[], _o: unknown, cmd: Command) => {
      const { dev } = parseAddrList(words)
      const h = handle(cmd)
      const names = new Map((await linkList(h)).map((l) => [l.index, l.name]))
      const addrs = (await addrList(h, dev)).map((a) => ({ dev: names.get(a.index), ...a }))
      if (globals(cmd).json) printJson(addrs)
      else
        printTable(
          ['DEV', 'FAMILY', 'ADDRESS', 'SCOPE'],
          addrs.map((a) => [a.dev, `ipv${a.family}`, a.cidr, SCOPES[a.scope] ?? a.scope]),
        )
    })
  examples(needsRoot(list, 'netns'), 'nsdn addr list', 'nsdn -n h1 --json addr list dev eth0')
}
