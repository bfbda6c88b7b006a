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
import { checkRoot, examples, globals } from './context.js'
import { usageFromCommander } from './errors.js'
import { VERSION } from './version.js'

interface Group {
  register(program: Command): void
}

/**
 * The command groups. A new group is a file in commands/ exporting register(), and a line
 * here: the name of its one top-level command (none when it has several), and its loader, so
 * that a command loads only its own group (start-up is latency).
 */
const GROUPS: ReadonlyArray<readonly [string | undefined, () => Group]> = [
  ['netns', () => require('./commands/netns.js') as Group],
  ['link', () => require('./commands/link.js') as Group],
  ['addr', () => require('./commands/addr.js') as Group],
  ['route', () => require('./commands/route.js') as Group],
  ['net', () => require('./commands/net.js') as Group],
  ['ovs', () => require('./commands/ovs.js') as Group],
  ['sandbox', () => require('./commands/sandbox.js') as Group],
  ['demo', () => require('./commands/demo.js') as Group],
  ['cni', () => require('./commands/cni.js') as Group],
  [undefined, () => require('./commands/container.js') as Group],
  ['image', () => require('./commands/image.js') as Group],
  ['lab', () => require('./commands/lab.js') as Group],
]

/** The command argv names: its first word past the global options (some take a value). */
export function commandName(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === '-n' || a === '--netns' || a === '--log-level') i++
    else if (!a.startsWith('-')) return a
  }
  return undefined
}

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

/** The program; with `argv`, only the group of the command it names (all when unsure). */
export function buildProgram(argv?: readonly string[]): Command {
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
  const name = argv && commandName(argv)
  const own = GROUPS.find(([n]) => n !== undefined && n === name)
  for (const [, load] of own ? [own] : GROUPS) load().register(program)
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
