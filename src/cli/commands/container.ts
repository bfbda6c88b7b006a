/**
 * The container commands, for LXC and Docker users: run, create, start, attach, exec, stop, kill,
 * freeze, thaw, rm, ps, info, logs, diff, clone, commit. The runtime is loaded inside each
 * action, so other commands do not pay for it.
 * @module
 */
import fs from 'node:fs'
import { constants } from 'node:os'
import path from 'node:path'
import type { Command } from 'commander'
import { ConfigError, NsdnError } from '../../errors.js'
import { opMode } from '../../op.js'
import { examples, globals, needsRoot } from '../context.js'
import { printJson, printTable } from '../output.js'
import { runExec } from './exec.js'
import { readConf } from './net.js'

const runtime = (): Promise<typeof import('../../runtime/index.js')> =>
  import('../../runtime/index.js')

interface SpecFlags {
  name?: string
  image?: string
  hostRoot?: boolean
  hostname?: string
  memory?: string
  memorySwap?: string
  cpus?: string
  cpuWeight?: string
  cpusetCpus?: string
  cpusetMems?: string
  pids?: string
  ioWeight?: string
  net?: string[]
  env?: string[]
  workdir?: string
  userns?: boolean
  volume?: string[]
  spec?: string
  fromLxc?: string
}

/** The commands that change containers (a dry run of them cannot work). */
const CHANGES = new Set([
  'run',
  'create',
  'start',
  'stop',
  'kill',
  'freeze',
  'thaw',
  'rm',
  'clone',
  'commit',
])

const collect = (v: string, prev: string[] = []): string[] => [...prev, v]

function specFlags(cmd: Command): Command {
  return cmd
    .option('--name <name>', 'container name')
    .option('--image <image>', 'an imported image ("nsdn image list")')
    .option('--host-root', 'the host root filesystem, read-only (an application container)')
    .option('--hostname <name>', 'hostname inside (default: the container name)')
    .option('--memory <size>', 'memory limit: 64M, 1G, ...')
    .option('--memory-swap <size>', 'memory + swap limit (as docker)')
    .option('--cpus <n>', 'cpu quota in cpus, e.g. 0.5')
    .option('--cpu-weight <n>', 'relative cpu weight, 1-10000')
    .option('--cpuset-cpus <list>', 'cpus it may run on, e.g. 0-1')
    .option('--cpuset-mems <list>', 'memory nodes it may use, e.g. 0')
    .option('--pids <n>', 'maximum number of processes')
    .option('--io-weight <n>', 'relative block I/O weight, 1-10000')
    .option(
      '--net <driver:json|conflist>',
      'a network: DRIVER:JSON, DRIVER:@FILE, or a CNI .conflist/.conf file (repeatable)',
      collect,
    )
    .option('-e, --env <KEY=VALUE>', 'environment variable (repeatable)', collect)
    .option('-w, --workdir <dir>', 'working directory inside')
    .option('--userns', 'own user namespace: container root is host uid 100000')
    .option('-v, --volume <src:dst[:ro]>', 'bind mount a host path (repeatable)', collect)
    .option('--spec <file>', 'a container spec (JSON or YAML); flags override its fields')
}

/** A spec object from the flags (and --spec FILE); the runtime validates it. */
async function specFrom(o: SpecFlags, argv: string[]): Promise<Record<string, unknown>> {
  const s: Record<string, unknown> = {}
  if (o.spec) {
    const raw = (await runtime()).readSpecFile(o.spec)
    if (typeof raw !== 'object' || raw === null) throw new ConfigError('must be an object', o.spec)
    Object.assign(s, raw)
  }
  if (o.name) s.name = o.name
  if (o.image) s.image = o.image
  if (o.hostRoot) s.hostRoot = true
  if (o.hostname) s.hostname = o.hostname
  const limits: Record<string, unknown> = { ...((s.limits as object) ?? {}) }
  if (o.memory !== undefined) limits.memory = o.memory
  if (o.memorySwap !== undefined) limits.memorySwap = o.memorySwap
  if (o.cpus !== undefined) limits.cpus = o.cpus
  if (o.cpuWeight !== undefined) limits.cpuWeight = o.cpuWeight
  if (o.cpusetCpus !== undefined) limits.cpusetCpus = o.cpusetCpus
  if (o.cpusetMems !== undefined) limits.cpusetMems = o.cpusetMems
  if (o.pids !== undefined) limits.pids = o.pids
  if (o.ioWeight !== undefined) limits.ioWeight = o.ioWeight
  if (Object.keys(limits).length) s.limits = limits
  if (o.net)
    s.networks = o.net.map((n, i) => {
      const m = /^([A-Za-z0-9_-]+):(.*)$/s.exec(n)
      // a CNI network config list (or a single config), run by nsdn's CNI side
      if (!m && /\.(conflist|conf|json)$/.test(n)) return { conflist: path.resolve(n) }
      if (!m)
        throw new ConfigError(
          `${JSON.stringify(n)} is not DRIVER:JSON or a CNI conflist`,
          `--net #${i + 1}`,
          {
            hint: 'e.g. bridge:{"name":"lab","bridge":"br-lab","ipam":{...}}, or /etc/cni/net.d/x.conflist',
          },
        )
      return { driver: m[1], conf: readConf(m[2]!, `--net #${i + 1}`) }
    })
  if (o.env) s.env = [...((s.env as string[]) ?? []), ...o.env]
  if (o.workdir) s.cwd = o.workdir
  if (o.userns) s.namespaces = ['mnt', 'uts', 'ipc', 'pid', 'net', 'cgroup', 'user']
  if (o.volume)
    s.mounts = o.volume.map((v) => {
      const [source, target, mode] = v.split(':')
      return { type: 'bind', source, target: target ?? source, readonly: mode === 'ro' }
    })
  if (argv.length) s.command = argv
  return s
}

/** Wait for a foreground container; exit with the payload's status. */
async function foreground(exited: Promise<number> | undefined): Promise<void> {
  const ignore = (): void => undefined // the terminal's signals reach init, which forwards them
  process.on('SIGINT', ignore)
  process.exitCode = (await exited) ?? 0
  process.off('SIGINT', ignore)
}

/** The runtime's later steps read what earlier ones made (a process, a cgroup): no dry run. */
export function noDryRun(cmd: Command): void {
  if (opMode.dryRun || globals(cmd).dryRun)
    throw new NsdnError('E_USAGE', 'container commands cannot run under --dry-run', {
      hint: 'use --explain to see every cgroup write, mount and namespace step while it runs',
    })
}

export function register(program: Command): void {
  program.hook('preAction', (_p, action) => {
    if (CHANGES.has(action.name())) noDryRun(action)
  })

  const run = specFlags(
    program
      .command('run')
      .description('create a container and start its command (docker run, lxc-create + lxc-start)')
      .argument('[command...]', 'the command and its arguments, after "--"')
      .option('-d, --detach', 'run in the background; output goes to "nsdn logs NAME"'),
  ).action(async (argv: string[], o: SpecFlags & { detach?: boolean }, cmd: Command) => {
    const rt = await runtime()
    const st = rt.create(await specFrom(o, argv))
    let started
    try {
      started = await rt.start(st.spec.name, { attach: !o.detach })
    } catch (err) {
      await rt.remove(st.spec.name, { force: true })
      throw err
    }
    if (o.detach) {
      if (globals(cmd).json) printJson(started)
      else process.stdout.write(`${st.spec.name}\n`)
    } else await foreground(started.exited)
  })
  examples(
    needsRoot(run),
    'nsdn image import busybox ./rootfs',
    'nsdn run --name web --image busybox -d --memory 64M --cpus 0.5 --pids 100 -- httpd -f',
    'nsdn run --name t1 --image busybox -- sh -c "hostname; ps"',
    `nsdn run --name n1 --image busybox -d --net 'bridge:{"name":"lab","bridge":"br-lab","ipam":{"type":"host-local","ranges":[[{"subnet":"10.10.0.0/24"}]]}}' -- sleep 1d`,
    'nsdn run --name c1 --image busybox -d --net /etc/cni/net.d/10-lab.conflist -- sleep 1d',
  )

  const create = specFlags(
    program
      .command('create')
      .description('create a container without starting it (lxc-create)')
      .argument('[command...]', 'the command and its arguments, after "--"')
      .option('--from-lxc <config>', 'read an LXC container config (lxc.* keys)'),
  ).action(async (argv: string[], o: SpecFlags, cmd: Command) => {
    const rt = await runtime()
    let spec: Record<string, unknown>
    if (o.fromLxc) {
      const r = rt.specFromLxc(fs.readFileSync(o.fromLxc, 'utf8'), o.fromLxc)
      for (const k of r.unsupported)
        process.stderr.write(`nsdn: ${o.fromLxc}: ${k}: not supported, ignored\n`)
      const flags = await specFrom(o, argv)
      spec = {
        ...r.spec,
        ...flags,
        limits: { ...(r.spec.limits as object), ...(flags.limits as object) },
      }
      // lxc.rootfs.path: imported as the image NAME-rootfs, unless --image/--host-root says
      if (spec.image === undefined && !spec.hostRoot) {
        if (!r.rootfsPath)
          throw new ConfigError(
            'no lxc.rootfs.path, and neither --image nor --host-root',
            o.fromLxc,
          )
        spec.image = `${String(spec.name)}-rootfs`
        rt.importImage(spec.image as string, r.rootfsPath)
      }
    } else spec = await specFrom(o, argv)
    const st = rt.create(spec)
    if (globals(cmd).json) printJson(st.spec)
    else process.stdout.write(`${st.spec.name}\n`)
  })
  examples(
    needsRoot(create),
    'nsdn create --name web --image busybox --memory 64M -- httpd -f',
    'nsdn create --from-lxc /var/lib/lxc/web/config --name web2',
  )

  const start = program
    .command('start')
    .description('start a created or stopped container; attached to the terminal unless -d')
    .argument('<name>', 'container name')
    .option('-d, --detach', 'run in the background')
    .action(async (name: string, o: { detach?: boolean }) => {
      const rt = await runtime()
      const s = await rt.start(name, { attach: !o.detach })
      if (!o.detach) await foreground(s.exited)
    })
  examples(needsRoot(start), 'nsdn start -d web', 'nsdn start web')

  const exec = program
    .command('exec')
    .description('run a command in a running container (lxc-attach, docker exec)')
    .argument('<name>', 'container name')
    .argument('<command...>', 'the command and its arguments, after "--"')
    .option('-t, --tty', 'give the command a terminal (interactive shells)')
    .option('-i, --interactive', 'accepted for docker compatibility: stdin is always passed')
    .option('-w, --workdir <dir>', 'working directory inside')
    .option('-e, --env <KEY=VALUE>', 'environment variable (repeatable)', collect)
    .action(
      async (
        name: string,
        argv: string[],
        o: { tty?: boolean; workdir?: string; env?: string[] },
      ) => {
        process.exitCode = await runExec(name, argv, o)
      },
    )
  examples(needsRoot(exec), 'nsdn exec web -- ps', 'nsdn exec -t web -- tty')

  const attach = program
    .command('attach')
    .description("follow a detached container's output and send it our input")
    .argument('<name>', 'container name')
    .action(async (name: string) => {
      const rt = await runtime()
      await rt.attach(name, process.stdin, process.stdout)
    })
  examples(needsRoot(attach), 'nsdn attach web')

  const stop = program
    .command('stop')
    .description('stop a container: a signal, a grace period, then SIGKILL (lxc-stop)')
    .argument('<name>', 'container name')
    .option('-s, --signal <sig>', 'the first signal', 'SIGTERM')
    .option('-t, --timeout <seconds>', 'grace period before SIGKILL', '10')
    .action(async (name: string, o: { signal: string; timeout: string }) => {
      const rt = await runtime()
      await rt.stop(name, { signal: signalName(o.signal), timeout: Number(o.timeout) })
    })
  examples(needsRoot(stop), 'nsdn stop web', 'nsdn stop -t 0 web')

  const kill = program
    .command('kill')
    .description('send a signal to the container (default SIGKILL: the whole container)')
    .argument('<name>', 'container name')
    .option('-s, --signal <sig>', 'signal', 'SIGKILL')
    .action(async (name: string, o: { signal: string }) => {
      ;(await runtime()).kill(name, signalName(o.signal))
    })
  examples(needsRoot(kill), 'nsdn kill -s HUP web', 'nsdn kill web')

  for (const [verb, what] of [
    ['freeze', 'freeze every process of a container (lxc-freeze)'],
    ['thaw', 'thaw a frozen container (lxc-unfreeze)'],
  ] as const) {
    const c = program
      .command(verb)
      .description(what)
      .argument('<name>', 'container name')
      .action(async (name: string) => {
        ;(await runtime())[verb](name)
      })
    examples(needsRoot(c), `nsdn ${verb} web`)
  }

  const rm = program
    .command('rm')
    .description('remove a container: processes (with -f), cgroup, netns, networks, files')
    .argument('<name...>', 'container names')
    .option('-f, --force', 'also a running container')
    .action(async (names: string[], o: { force?: boolean }) => {
      const rt = await runtime()
      for (const n of names) await rt.remove(n, { force: o.force === true })
    })
  examples(needsRoot(rm), 'nsdn rm web', 'nsdn rm -f web2')

  const ps = program
    .command('ps')
    .alias('ls')
    .description('list containers (running ones; -a all)')
    .option('-a, --all', 'also created and stopped ones')
    .action(async (o: { all?: boolean }, cmd: Command) => {
      const all = (await runtime()).list()
      const rows = o.all ? all : all.filter((c) => c.status === 'running' || c.status === 'frozen')
      if (globals(cmd).json) return printJson(rows)
      printTable(
        ['NAME', 'STATUS', 'PID', 'IMAGE', 'COMMAND'],
        rows.map((c) => [
          c.name,
          c.status + (c.exitCode !== undefined ? ` (${c.exitCode})` : ''),
          c.pid,
          c.image ?? 'host',
          c.command.join(' '),
        ]),
      )
    })
  examples(ps, 'nsdn ps', 'nsdn ps -a', 'nsdn --json ps')

  const info = program
    .command('info')
    .description('state, pid, addresses, limits and usage of a container (lxc-info)')
    .argument('<name>', 'container name')
    .action(async (name: string, _o: unknown, cmd: Command) => {
      const i = await (await runtime()).infoWithAddresses(name)
      if (globals(cmd).json) return printJson(i)
      const lines: Array<[string, unknown]> = [
        ['Name', i.name],
        ['State', i.status.toUpperCase()],
        ['PID', i.pid],
        ['Image', i.image ?? 'host root (read-only)'],
        ['Hostname', i.hostname],
        ['Command', i.command.join(' ')],
        ['Exit code', i.exitCode],
        ['Netns', i.netns],
        ['IP', i.addresses?.join(', ')],
        [
          'Limits',
          Object.entries(i.limits)
            .map(([k, v]) => `${k}=${v}`)
            .join(' ') || 'none',
        ],
        [
          'Memory use',
          i.usage?.memory &&
            `${i.usage.memory.usage} bytes (limit hits ${i.usage.memory.limitHits}, OOM kills ${i.usage.memory.oomKills})`,
        ],
        [
          'CPU use',
          i.usage?.cpu &&
            `${(i.usage.cpu.usageNs / 1e9).toFixed(2)} s (throttled ${i.usage.cpu.throttled}/${i.usage.cpu.periods} periods)`,
        ],
        [
          'Processes',
          i.usage?.pids &&
            `${i.usage.pids.current}${i.usage.pids.limit ? ` of ${i.usage.pids.limit}` : ''}`,
        ],
      ]
      for (const [k, v] of lines)
        if (v !== undefined && v !== '')
          process.stdout.write(`${(k + ':').padEnd(12)}${String(v)}\n`)
    })
  examples(needsRoot(info), 'nsdn info web', 'nsdn --json info web')

  const logs = program
    .command('logs')
    .description("a detached container's output")
    .argument('<name>', 'container name')
    .action(async (name: string) => {
      const rt = await runtime()
      rt.loadState(name)
      const f = path.join(rt.stateDir(name), 'log')
      if (fs.existsSync(f)) process.stdout.write(fs.readFileSync(f))
    })
  examples(logs, 'nsdn logs web')

  const diff = program
    .command('diff')
    .description('files the container added (A), changed (C) and deleted (D), as docker diff')
    .argument('<name>', 'container name')
    .action(async (name: string, _o: unknown, cmd: Command) => {
      const changes = (await runtime()).diff(name)
      if (globals(cmd).json) return printJson(changes)
      for (const c of changes) process.stdout.write(`${c.kind} ${c.path}\n`)
    })
  examples(needsRoot(diff), 'nsdn diff web')

  const clone = program
    .command('clone')
    .description('a new container with the spec and the files of a stopped one (lxc-copy)')
    .argument('<src>', 'container to copy')
    .argument('<new>', 'name of the copy')
    .action(async (src: string, dst: string) => {
      ;(await runtime()).clone(src, dst)
    })
  examples(needsRoot(clone), 'nsdn clone web web2')

  const commit = program
    .command('commit')
    .description("a new image: the container's upper layer over its image's layers (shared)")
    .argument('<name>', 'container name')
    .argument('<image>', 'name of the new image')
    .action(async (name: string, image: string) => {
      ;(await runtime()).commit(name, image)
    })
  examples(needsRoot(commit), 'nsdn commit web web-configured')
}

function signalName(s: string): NodeJS.Signals {
  const n = (/^SIG/i.test(s) ? s : `SIG${s}`).toUpperCase()
  if (!(n in constants.signals))
    throw new NsdnError('E_USAGE', `unknown signal ${JSON.stringify(s)}`, {
      hint: 'e.g. TERM, INT, HUP, KILL',
    })
  return n as NodeJS.Signals
}
