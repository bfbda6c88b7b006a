/**
 * `nsdn route add|del|list`: routes, with gateway, device, source, metric and table.
 * @module
 */
import type { Command } from 'commander'
import { linkList } from '../../netlink/link.js'
import { routeAdd, routeDel, routeList } from '../../netlink/route.js'
import { ROUTE_USAGE, parseRoute } from '../args.js'
import { examples, globals, handle, needsRoot } from '../context.js'
import { printJson, printTable } from '../output.js'

const TABLES: Record<number, string> = { 253: 'default', 254: 'main', 255: 'local' }

interface Family {
  '6'?: boolean
}

export function register(program: Command): void {
  const route = program.command('route').description('routes: add, delete, list')
  examples(route, 'nsdn -n h1 route add default via 10.0.0.1', 'nsdn route list')

  for (const verb of ['add', 'del'] as const) {
    const cmd = route
      .command(verb)
      .description(verb === 'add' ? 'add a route' : 'delete a route')
      .argument('<args...>', ROUTE_USAGE)
      .option('-6', 'IPv6 (for a default route without a gateway)')
      .action(async (words: string[], o: Family, c: Command) => {
        const { dev, ...r } = parseRoute(verb, words, o['6'] === true)
        const spec = { ...r, ...(dev !== undefined ? { dev } : {}) }
        await (verb === 'add' ? routeAdd : routeDel)(handle(c), spec)
      })
    if (verb === 'del') cmd.alias('delete')
    examples(
      needsRoot(cmd),
      `nsdn -n h1 route ${verb} default via 10.0.0.1`,
      `nsdn route ${verb} 10.1.0.0/16 via 10.0.0.2 dev br0 metric 100`,
      `nsdn -n h1 route ${verb} -6 default dev eth0`,
    )
  }

  const list = route
    .command('list')
    .alias('show')
    .description('list routes (all tables but local): destination, gateway, device, ...')
    .option('-6', 'IPv6 routes instead of IPv4')
    .action(async (o: Family, cmd: Command) => {
      const h = handle(cmd)
      const names = new Map((await linkList(h)).map((l) => [l.index, l.name]))
      const routes = (await routeList(h, o['6'] ? 6 : 4)).map((r) => ({
        ...r,
        dev: r.oif === undefined ? undefined : names.get(r.oif),
      }))
      if (globals(cmd).json) printJson(routes)
      else
        printTable(
          ['DESTINATION', 'VIA', 'DEV', 'SRC', 'METRIC', 'TABLE'],
          routes.map((r) => [r.dst, r.via, r.dev, r.src, r.metric, TABLES[r.table] ?? r.table]),
        )
    })
  examples(needsRoot(list, 'netns'), 'nsdn route list', 'nsdn -n h1 route list -6')
}
