/**
 * `npm run bench -- runtime [--n 20]`: the container runtime against LXC, in one run.
 * Start to a running payload, exec of `true`, stop with SIGKILL, and the memory each runtime
 * keeps per idle container, for nsdn's library API (from this running Node process), nsdn's
 * CLI, Debian's lxc-start / lxc-attach / lxc-stop -k (busybox template, no network), and
 * `unshare` / `nsenter` as the floor. Methods alternate within each iteration, so load on this
 * shared machine hits them alike. Runs itself inside a sandbox; images and containers live on
 * the sandbox's /run. Prints a table of medians and ratios.
 * @module
 */
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { inSandbox, runSandboxed } from '../src/sandbox.js'

const MAIN = path.resolve(__dirname, '../src/cli/main.js')
const P = '/run/lxc-bench'
const NS_FLAGS = ['--mount', '--uts', '--ipc', '--pid', '--net', '--cgroup', '--fork']

const ms = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6

function sh(argv: string[], env?: NodeJS.ProcessEnv): void {
  const r = spawnSync(argv[0]!, argv.slice(1), {
    stdio: ['ignore', 'ignore', 'pipe'],
    encoding: 'utf8',
    ...(env ? { env } : {}),
  })
  if (r.status !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr || r.error?.message}`)
}

function timed(argv: string[], env?: NodeJS.ProcessEnv): number {
  const t0 = process.hrtime.bigint()
  sh(argv, env)
  return ms(t0)
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length ? (s[(s.length - 1) >> 1]! + s[s.length >> 1]!) / 2 : NaN
}

/** VmRSS and Pss of a process, in KiB. */
function memOf(pid: number): { rss: number; pss: number } {
  const st = fs.readFileSync(`/proc/${pid}/status`, 'utf8')
  const roll = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8')
  return {
    rss: Number(/^VmRSS:\s+(\d+)/m.exec(st)?.[1]),
    pss: Number(/^Pss:\s+(\d+)/m.exec(roll)?.[1]),
  }
}

const lxcPid = (name: string): number => {
  const r = spawnSync('lxc-info', ['-P', P, '-n', name, '-p', '-H'], { encoding: 'utf8' })
  return Number(r.stdout.trim())
}

function monitorPid(name: string): number | undefined {
  for (const p of fs.readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const cmd = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ').trim()
      if (cmd.startsWith('[lxc monitor]') && cmd.endsWith(` ${name}`)) return Number(p)
    } catch {
      // gone
    }
  }
  return undefined
}

async function bench(n: number): Promise<void> {
  process.env.NSDN_RUN_DIR = '/run/nsdn'
  process.env.NSDN_LIB_DIR = '/run/nsdn-lib'
  process.env.NSDN_CGROUP_PARENT = `nsdn/bench-${process.pid}`
  const rt = await import('../src/runtime/index.js')
  const { busyboxRoot, removeCgroupParents } = await import('../test/helpers/runtime.js')
  const env = { ...process.env }
  const haveLxc =
    spawnSync('sh', ['-c', 'command -v lxc-start && test -e /usr/share/lxc/templates/lxc-busybox'])
      .status === 0
  rt.importImage('bb', busyboxRoot())
  if (haveLxc) {
    fs.mkdirSync(P, { recursive: true })
    fs.writeFileSync('/run/lxc-bench.conf', 'lxc.net.0.type = empty\n')
  }
  const t: Record<string, number[]> = {}
  const add = (k: string, v: number): void => void (t[k] ??= []).push(v)
  const mem: Record<string, Array<{ rss: number; pss: number }>> = {}
  const addMem = (k: string, pid: number | undefined): void => {
    if (pid) (mem[k] ??= []).push(memOf(pid))
  }
  for (let i = 0; i < n; i++) {
    const name = `b${i}`
    rt.create({ name, image: 'bb', command: ['sleep', '100000'] })
    if (haveLxc)
      sh(['lxc-create', '-P', P, '-n', name, '-t', 'busybox', '-f', '/run/lxc-bench.conf'])
  }
  // warm: the first of each pays for loading code and caches
  process.stderr.write(
    `bench runtime: ${n} iterations${haveLxc ? '' : ' (lxc not installed: nsdn and the floor only)'}\n`,
  )
  for (let i = 0; i < n; i++) {
    const name = `b${i}`
    let t0 = process.hrtime.bigint()
    const s = await rt.start(name)
    add('start nsdn (library)', ms(t0))
    if (haveLxc)
      add(
        'start lxc-start -d + lxc-wait RUNNING',
        timed([
          'sh',
          '-c',
          `lxc-start -P ${P} -n ${name} -d -- /bin/sleep 100000 && lxc-wait -P ${P} -n ${name} -s RUNNING`,
        ]),
      )
    add('start unshare (floor: all namespaces, true)', timed(['unshare', ...NS_FLAGS, 'true']))
    t0 = process.hrtime.bigint()
    await rt.exec(name, ['true'], { stdio: 'ignore' })
    add('exec nsdn (library)', ms(t0))
    add('exec nsdn CLI', timed([process.execPath, MAIN, 'exec', name, '--', 'true'], env))
    if (haveLxc) add('exec lxc-attach', timed(['lxc-attach', '-P', P, '-n', name, '--', 'true']))
    add('exec nsenter (floor)', timed(['nsenter', '-t', String(s.pid), '-a', 'true']))
    addMem('nsdn-init (PID 1)', s.pid)
    if (haveLxc) {
      addMem('lxc monitor', monitorPid(name))
      addMem('lxc payload PID 1 (sleep)', lxcPid(name))
    }
  }
  for (let i = 0; i < n; i++) {
    const name = `b${i}`
    let t0 = process.hrtime.bigint()
    rt.kill(name)
    add('stop -k nsdn (library)', ms(t0))
    if (haveLxc) add('stop lxc-stop -k', timed(['lxc-stop', '-P', P, '-n', name, '-k']))
    t0 = process.hrtime.bigint()
    await rt.remove(name)
    add('rm nsdn (library)', ms(t0))
    if (haveLxc) sh(['lxc-destroy', '-P', P, '-n', name])
  }
  // CLI: node's own start-up dominates; the fast path keeps exec and --version near it
  for (let i = 0; i < n; i++) {
    add('cli node -e 0', timed([process.execPath, '-e', '0']))
    add('cli nsdn --version', timed([process.execPath, MAIN, '--version']))
    add(
      'cli nsdn run -d',
      timed(
        [
          process.execPath,
          MAIN,
          'run',
          '--name',
          'cli',
          '--image',
          'bb',
          '-d',
          '--',
          'sleep',
          '1000',
        ],
        env,
      ),
    )
    add('cli nsdn exec -- true', timed([process.execPath, MAIN, 'exec', 'cli', '--', 'true'], env))
    add('cli nsdn rm -f', timed([process.execPath, MAIN, 'rm', '-f', 'cli'], env))
  }
  rt.removeImage('bb')
  removeCgroupParents()

  const row = (k: string, ref?: string): string => {
    const m = median(t[k] ?? [])
    const r = ref && t[ref] ? ` | ${(median(t[ref]!) / m).toFixed(2)}x` : ' |'
    return `| ${k} | ${m.toFixed(1)}${r}`
  }
  const out = [
    `runtime benchmark: ${n} iterations, medians; ${os.cpus().length} cpus, load ${os.loadavg()[0]!.toFixed(2)} at the end`,
    '',
    '| step | ms | speed-up vs LXC |',
    '|---|---:|---:|',
    row('start nsdn (library)', 'start lxc-start -d + lxc-wait RUNNING'),
    row('start lxc-start -d + lxc-wait RUNNING'),
    row('start unshare (floor: all namespaces, true)'),
    row('exec nsdn (library)', 'exec lxc-attach'),
    row('exec nsdn CLI', 'exec lxc-attach'),
    row('exec lxc-attach'),
    row('exec nsenter (floor)'),
    row('stop -k nsdn (library)', 'stop lxc-stop -k'),
    row('stop lxc-stop -k'),
    row('rm nsdn (library)'),
    '',
    '| CLI | ms | x node -e 0 |',
    '|---|---:|---:|',
    ...[
      'cli node -e 0',
      'cli nsdn --version',
      'cli nsdn exec -- true',
      'cli nsdn run -d',
      'cli nsdn rm -f',
    ].map(
      (k) =>
        `| ${k.slice(4)} | ${median(t[k] ?? []).toFixed(1)} | ${(median(t[k] ?? []) / median(t['cli node -e 0'] ?? [])).toFixed(2)}x |`,
    ),
    '',
    '| process kept per idle container | RSS KiB | PSS KiB |',
    '|---|---:|---:|',
    ...Object.entries(mem).map(
      ([k, v]) => `| ${k} | ${median(v.map((x) => x.rss))} | ${median(v.map((x) => x.pss))} |`,
    ),
  ]
  process.stdout.write(out.join('\n') + '\n')
}

export async function runtimeMain(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { n: { type: 'string', default: '20' } } })
  if (!inSandbox()) return runSandboxed([process.execPath, __filename, ...args])
  await bench(Number(values.n))
  return 0
}

if (require.main === module)
  void runtimeMain(process.argv.slice(2)).then((c) => (process.exitCode = c))
