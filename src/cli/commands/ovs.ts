/**
 * `nsdn ovs ...`: a private Open vSwitch (start/stop/status) and the ovs-vsctl steps of the
 * LXC book's walkthrough (bridges, ports, VLAN tags), each printed under --explain.
 * @module
 */
import type { Command } from 'commander'
import {
  defaultDatapathType,
  ovsClient,
  ovsRunDir,
  ovsStart,
  ovsStatus,
  ovsStop,
} from '../../ovs/daemon.js'
import { netdevPortChecksums } from '../../ovs/netdev.js'
import { NsdnError } from '../../errors.js'
import { runOp } from '../../op.js'
import { parseIntIn, validIfName } from '../../validate.js'
import { examples, globals, needsRoot } from '../context.js'
import { printJson, printTable } from '../output.js'

const tagOf = (text: string): number => parseIntIn(text, 0, 4095, 'tag')

function trunksOf(text: string): number[] {
  return text.split(',').map((t) => parseIntIn(t, 0, 4095, 'trunks'))
}

interface PortOpts {
  tag?: string
  trunks?: string
}

/** `tag=N` and `trunks=A,B` after the port, as ovs-vsctl takes them, merged into the options. */
function withSettings(o: PortOpts, settings: readonly string[]): PortOpts {
  const out = { ...o }
  for (const s of settings) {
    const m = /^(tag|trunks)=(.+)$/.exec(s)
    if (!m)
      throw new NsdnError('E_USAGE', `add-port: unknown setting ${JSON.stringify(s)}`, {
        hint: 'write tag=N or trunks=A,B (as ovs-vsctl), or --tag N / --trunks A,B',
      })
    const key = m[1] as 'tag' | 'trunks'
    if (out[key] !== undefined)
      throw new NsdnError('E_USAGE', `add-port: ${key} given twice`, { hint: `give ${key} once` })
    out[key] = m[2]!
  }
  return out
}

export function register(program: Command): void {
  const ovs = program
    .command('ovs')
    .description('Open vSwitch: a private ovsdb-server + ovs-vswitchd, bridges, ports, VLAN tags')
  examples(
    ovs,
    'nsdn ovs start',
    'nsdn ovs add-br OVS-1',
    'nsdn ovs add-port OVS-1 veth-ns1 tag=100',
  )

  const start = ovs
    .command('start')
    .description('start a private Open vSwitch (userspace datapath without the kernel module)')
    .action(async (_o: unknown, cmd: Command) => {
      const op = { kind: 'ovs.daemon', action: 'start', runDir: ovsRunDir() } as const
      const s = await runOp(op, () => ovsStart(), undefined)
      if (!s) return
      if (globals(cmd).json) printJson(s)
      // stdout, the result: stderr carries the --explain lines, which must paste as they are.
      else
        process.stdout.write(
          `Open vSwitch ${s.version ?? ''} running in ${s.runDir} (datapath ${s.datapath})\n`,
        )
    })
  examples(needsRoot(start), 'nsdn ovs start', 'NSDN_OVS_RUNDIR=/tmp/ovs nsdn ovs start')

  const stop = ovs
    .command('stop')
    .description('stop the private Open vSwitch and remove its run directory')
    .action(async () => {
      await runOp(
        { kind: 'ovs.daemon', action: 'stop', runDir: ovsRunDir() },
        () => ovsStop(),
        undefined,
      )
    })
  examples(needsRoot(stop), 'nsdn ovs stop')

  const status = ovs
    .command('status')
    .description('whether the private Open vSwitch runs, its pids, version and datapath')
    .action(async (_o: unknown, cmd: Command) => {
      const s = await ovsStatus()
      if (globals(cmd).json) printJson(s)
      else
        printTable(
          ['running', 'version', 'datapath', 'ovsdb-server', 'ovs-vswitchd', 'db'],
          [
            [
              String(s.running),
              s.version,
              s.datapath,
              s.pids.ovsdbServer,
              s.pids.ovsVswitchd,
              s.db,
            ],
          ],
        )
    })
  examples(status, 'nsdn ovs status', 'nsdn --json ovs status')

  const addBr = ovs
    .command('add-br')
    .description('create a bridge (datapath netdev when the kernel module is missing)')
    .argument('<bridge>', 'bridge name')
    .action(async (br: string) => {
      await ovsClient().addBr(validIfName(br, 'bridge'), {
        datapathType: await defaultDatapathType(),
      })
    })
  examples(needsRoot(addBr), 'nsdn ovs add-br OVS-1')

  const delBr = ovs
    .command('del-br')
    .description('delete a bridge and its ports')
    .argument('<bridge>', 'bridge name')
    .action(async (br: string) => {
      await ovsClient().delBr(validIfName(br, 'bridge'))
    })
  examples(needsRoot(delBr), 'nsdn ovs del-br OVS-1')

  const addPort = ovs
    .command('add-port')
    .description('add a port to a bridge, optionally an access port (tag) or a trunk')
    .argument('<bridge>', 'bridge name')
    .argument('<port>', 'port (an existing link, e.g. a veth end)')
    .argument('[settings...]', 'tag=N, trunks=A,B (ovs-vsctl form of --tag, --trunks)')
    .option('--tag <vlan>', 'access VLAN 0-4095')
    .option('--trunks <list>', 'trunk VLANs, e.g. 100,200')
    .action(async (br: string, port: string, settings: string[], opts: PortOpts) => {
      const o = withSettings(opts, settings)
      const vs = ovsClient()
      await vs.addPort(validIfName(br, 'bridge'), validIfName(port, 'port'), {
        ...(o.tag !== undefined ? { tag: tagOf(o.tag) } : {}),
        ...(o.trunks !== undefined ? { trunks: trunksOf(o.trunks) } : {}),
      })
      // As the ovs driver does: TCP through the userspace datapath needs software checksums.
      await netdevPortChecksums(vs, br, port)
    })
  examples(
    needsRoot(addPort),
    'nsdn ovs add-port OVS-1 veth-ns1',
    'nsdn ovs add-port OVS-1 veth-ns2 --tag 200',
    'nsdn ovs add-port OVS-1 veth-ns3 trunks=100,200',
  )

  const delPort = ovs
    .command('del-port')
    .description('remove a port from its bridge')
    .argument('<port>', 'port name')
    .action(async (port: string) => {
      await ovsClient().delPort(validIfName(port, 'port'))
    })
  examples(needsRoot(delPort), 'nsdn ovs del-port veth-ns1')

  const setPort = ovs
    .command('set-port')
    .description('set (or with "none" clear) the access VLAN tag of a port')
    .argument('<port>', 'port name')
    .argument('<tag>', 'VLAN 0-4095, or "none"')
    .action(async (port: string, tag: string) => {
      await ovsClient().setPortTag(validIfName(port, 'port'), tag === 'none' ? null : tagOf(tag))
    })
  examples(needsRoot(setPort), 'nsdn ovs set-port veth-ns1 100', 'nsdn ovs set-port veth-ns1 none')
}
