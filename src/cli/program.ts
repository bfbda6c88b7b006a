/**
 * The `nsdn` command line: global options, the command groups, and the hook that applies the
 * options and checks root before any command runs. Kept apart from main.ts (which runs it) so
 * tests can build the program without running it.
 * @module
 */
import { Command, Option } from 'commander'
import { setLogLevel } from '../log.js'
import { opMode } from '../op.js'
import { validNetnsName } from '../validate.js'
import * as addr from './commands/addr.js'
import * as cni from './commands/cni.js'
import * as link from './commands/link.js'
import * as net from './commands/net.js'
import * as netns from './commands/netns.js'
import * as ovs from './commands/ovs.js'
import * as demo from './commands/demo.js'
import * as lab from './commands/lab.js'
import * as route from './commands/route.js'
import * as sandbox from './commands/sandbox.js'
import * as container from './commands/container.js'
import * as image from './commands/image.js'
import { checkRoot, examples, globals } from './context.js'
import { usageFromCommander } from './errors.js'
import { VERSION } from './version.js'

/** The command groups. A new group is a file in commands/ exporting register(), and a line here. */
const GROUPS: ReadonlyArray<{ register(program: Command): void }> = [
  netns,
  link,
  addr,
  route,
  net,
  ovs,
  sandbox,
  demo,
  cni,
  container,
  image,
  lab,
]

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

/** Every command of the tree, the program first. */
export function allCommands(cmd: Command): Command[] {
  return [cmd, ...cmd.commands.flatMap(allCommands)]
}

function commandPath(cmd: Command): string {
  const names: string[] = []
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name())
  return names.join(' ')
}

export function buildProgram(): Command {
  const program = new Command('nsdn')
    .description('wire Linux network namespaces together, the way iproute2 does, over netlink')
    .version(VERSION, '-V, --version', 'print the version of nsdn')
    .option('-n, --netns <NS>', 'work in the named network namespace NS (like ip -n)')
    .option('--explain', 'print every step as the equivalent command on stderr')
    .option('--dry-run', 'print the steps as commands, change nothing')
    .option('--json', 'machine-readable output on stdout')
    .addOption(
      new Option('--log-level <level>', 'log to stderr from this level').choices(LOG_LEVELS),
    )
  for (const g of GROUPS) g.register(program)
  examples(
    program,
    '# a namespace joined to this one by a veth pair',
    'nsdn netns add h1',
    'nsdn link add v-h1 up type veth peer eth0 netns h1',
    'nsdn addr add 10.0.0.1/24 dev v-h1',
    'nsdn -n h1 link set eth0 up',
    'nsdn -n h1 addr add 10.0.0.2/24 dev eth0',
    'nsdn netns exec h1 -- ping -c1 10.0.0.1',
    '# show the ip commands instead of running them',
    'nsdn --dry-run link add br0 up type bridge',
  )
  program.hook('preAction', (_program, action) => {
    const g = globals(action)
    if (g.netns !== undefined) validNetnsName(g.netns, '-n')
    if (g.logLevel) setLogLevel(g.logLevel)
    opMode.explain ||= g.explain === true
    opMode.dryRun ||= g.dryRun === true
    checkRoot(action)
  })
  // Commander's own errors (unknown option, missing argument) go to the one boundary as
  // E_USAGE, with the failing command's help as the hint; help and version exit through it too.
  for (const cmd of allCommands(program)) {
    const path = commandPath(cmd)
    cmd.configureOutput({ outputError: () => undefined })
    cmd.exitOverride((err) => {
      if (err.exitCode === 0 || err.code === 'commander.help') throw err
      throw usageFromCommander(err, path)
    })
  }
  return program
}
