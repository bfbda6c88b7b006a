/**
 * `nsdn net attach|detach|check NETNS --driver NAME --conf JSON|@FILE`: use a network driver
 * on any named namespace by hand, as a container runtime would through CNI.
 * @module
 */
import fs from 'node:fs'
import os from 'node:os'
import type { Command } from 'commander'
import { type AttachRequest, attach, check, detach } from '../../drivers/attach.js'
import type { CniResult } from '../../drivers/api.js'
import { addDriverDir, listDrivers } from '../../drivers/registry.js'
import { ConfigError, NsdnError, errorMessage } from '../../errors.js'
import { interrupt } from '../../drivers/rollback.js'
import { Rtnl } from '../../netlink/rtnl.js'
import { opMode } from '../../op.js'
import { versionOf, writeResult } from '../../cni/spec.js'
import { examples, globals, needsRoot } from '../context.js'
import { printJson, printTable } from '../output.js'

interface NetOpts {
  driver: string
  conf: string
  ifname?: string
  containerId?: string
  driverPath?: string
}

/** `--conf` is JSON text, or @FILE (`where`: the flag, for errors). */
export function readConf(text: string, where = '--conf'): unknown {
  let json = text
  if (text.startsWith('@')) {
    try {
      json = fs.readFileSync(text.slice(1), 'utf8')
    } catch (err) {
      throw new ConfigError(`cannot read ${text.slice(1)}`, where, {
        cause: err,
        hint: 'give a readable file after @, or the JSON itself',
      })
    }
  }
  try {
    // Editors on some systems save UTF-8 with a byte order mark; JSON.parse refuses it.
    return JSON.parse(json.replace(/^\uFEFF/, '')) as unknown
  } catch (err) {
    throw new ConfigError(`not valid JSON: ${(err as Error).message}`, where, {
      hint: `e.g. --conf '{"name":"net1","bridge":"br0","ipam":{...}}'`,
    })
  }
}

function request(netns: string, o: NetOpts): AttachRequest {
  // A driver reads back what it created (links, leases) to build its result: with nothing
  // created, the second step would fail or lease addresses for real.
  if (opMode.dryRun)
    throw new NsdnError('E_USAGE', 'net attach/detach/check cannot run under --dry-run', {
      hint: 'use --explain to see every ip/ovs-vsctl step while it runs',
    })
  if (o.driverPath) addDriverDir(o.driverPath)
  return {
    driver: o.driver,
    conf: readConf(o.conf),
    netns,
    ...(o.ifname ? { ifname: o.ifname } : {}),
    ...(o.containerId ? { containerId: o.containerId } : {}),
  }
}

/**
 * Run an attach so that SIGINT or SIGTERM rolls it back before the process exits (130, 143)
 * instead of killing it half-way.
 */
async function interruptible<T>(fn: () => Promise<T>): Promise<T> {
  let got: NodeJS.Signals | undefined
  const on = (sig: NodeJS.Signals): void => {
    got = sig
    interrupt(sig)
  }
  const sigs = ['SIGINT', 'SIGTERM'] as const
  for (const s of sigs) process.on(s, on)
  try {
    return await fn()
  } catch (err) {
    if (!got) throw err
    Rtnl.closeAll()
    process.stderr.write(`nsdn: ${errorMessage(err)}\n`)
    return process.exit(128 + (os.constants.signals[got] ?? 0))
  } finally {
    for (const s of sigs) process.off(s, on)
  }
}

/** The Result in the version the config asks for (cniVersion always set, as CNI requires). */
function printResult(r: CniResult, conf: unknown, json: boolean | undefined): void {
  if (json) return printJson(writeResult(r, versionOf(conf)))
  const ifs = r.interfaces ?? []
  printTable(
    ['interface', 'address', 'gateway'],
    (r.ips ?? []).map((ip) => [ifs[ip.interface ?? -1]?.name, ip.address, ip.gateway]),
  )
}

function withOptions(cmd: Command): Command {
  return cmd
    .argument('<netns>', 'named network namespace')
    .requiredOption(
      '--driver <name>',
      'network driver: bridge, ovs, vlan, routed, or a third-party one',
    )
    .requiredOption('--conf <json|@file>', 'network config (CNI shape), as JSON or @FILE')
    .option('--ifname <name>', 'interface name inside the namespace', 'eth0')
    .option('--container-id <id>', 'owner of the IPAM leases (default: the netns name)')
    .option('--driver-path <dir>', 'another directory of drivers (also NSDN_DRIVER_PATH)')
}

export function register(program: Command): void {
  const net = program
    .command('net')
    .description('attach named namespaces to networks with a driver (the CNI ADD/DEL/CHECK verbs)')
  const conf =
    `'{"name":"lab","bridge":"br-lab","isGateway":true,` +
    `"ipam":{"type":"host-local","subnet":"10.10.0.0/24"}}'`
  examples(net, `nsdn --explain net attach h1 --driver bridge --conf ${conf}`, 'nsdn net drivers')

  const att = withOptions(net.command('attach'))
    .description('attach NETNS (CNI ADD); --json prints the CNI Result')
    .action(async (netns: string, o: NetOpts, cmd: Command) => {
      const req = request(netns, o)
      printResult(await interruptible(() => attach(req)), req.conf, globals(cmd).json)
    })
  examples(
    needsRoot(att),
    `nsdn net attach h1 --driver bridge --conf ${conf}`,
    'nsdn --json net attach h2 --driver routed --conf @routed.json',
  )

  const det = withOptions(net.command('detach'))
    .description('detach NETNS (CNI DEL): fine when all or part of it is gone already')
    .action(async (netns: string, o: NetOpts) => {
      await detach(request(netns, o))
    })
  examples(needsRoot(det), `nsdn net detach h1 --driver bridge --conf ${conf}`)

  const chk = withOptions(net.command('check'))
    .description('check NETNS (CNI CHECK) against what attach recorded; says what differs')
    .action(async (netns: string, o: NetOpts) => {
      await check(request(netns, o))
    })
  examples(needsRoot(chk), `nsdn net check h1 --driver bridge --conf ${conf}`)

  const drivers = net
    .command('drivers')
    .description('list the drivers found (built-in and NSDN_DRIVER_PATH)')
    .action((_o: unknown, cmd: Command) => {
      const all = [...listDrivers()].map(([name, dir]) => ({ name, dir }))
      if (globals(cmd).json) printJson(all)
      else
        printTable(
          ['driver', 'directory'],
          all.map((d) => [d.name, d.dir]),
        )
    })
  examples(drivers, 'nsdn net drivers', 'NSDN_DRIVER_PATH=./my-drivers nsdn net drivers')
}
