/**
 * One lab, built, checked and removed by one method, inside a sandbox (bench/lab.ts runs it in
 * a fresh one per run). Methods:
 * - `nsdn-lab`: the whole `nsdn lab deploy FILE` command, Node start included, then the whole
 *   `nsdn lab destroy NAME` (which waits until the kernel has removed every veth);
 * - `ip`: the lab's `nsdn lab explain` script run by bash, one `ip` (or sysctl, nft, tc,
 *   ovs-vsctl) process per operation, as a learner would paste it;
 * - `ip-batch`: the same commands, each namespace's `ip` lines fed to one `ip -n NS -batch -`.
 * The lab counts as built when its checks pass (`nsdn lab verify`, untimed).
 * Usage: node dist/bench/lab-run.js METHOD FILE [RUN]; prints one RESULT line.
 * @module
 */
import { spawnSync } from 'node:child_process'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { inSandbox, runSandboxed } from '../src/sandbox.js'

/** The command a user runs (bin/nsdn, with its environment rule), not main.js under node. */
const BIN = path.resolve(__dirname, '../../bin/nsdn')
const nsdn = (args: string[]): { status: number | null; stdout: string; stderr: string } =>
  spawnSync(BIN, args, { encoding: 'utf8', maxBuffer: 1 << 28 })
const bash = (script: string): number | null =>
  spawnSync('bash', ['-e'], { input: script, stdio: ['pipe', 'ignore', 'inherit'] }).status

/**
 * `ip [-n NS] ARGS` lines grouped into one `ip [-n NS] -batch -` per namespace: the root's
 * first (it makes the namespaces), then each namespace after those whose batch makes a veth
 * into it. The other commands (sysctl, nft, tc, ethtool, ovs-vsctl) follow in their order: they
 * only act on what the ip lines made (the OVS daemon and bridges come before their ports).
 */
export function batchify(script: string): string {
  const groups = new Map<string, string[]>([['', []]])
  const after = new Map<string, Set<string>>()
  const rest: string[] = []
  const lines = script.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!
    if (l.startsWith('#') || !l.trim() || l === 'set -e') continue
    const m = /^ip (?:-n (\S+) )?((?:netns (?:add|del)|link|addr|route) .*)$/.exec(l)
    if (!m) {
      rest.push(l)
      // keep a heredoc whole
      const h = /<<'?(\w+)'?$/.exec(l)
      if (h) while (++i < lines.length && (rest.push(lines[i]!), lines[i] !== h[1]));
      continue
    }
    const ns = m[1] ?? ''
    if (!groups.has(ns)) groups.set(ns, [])
    groups.get(ns)!.push(m[2]!)
    const into = / netns (\S+)/.exec(m[2]!)?.[1]
    if (into && ns) after.set(into, (after.get(into) ?? new Set()).add(ns))
  }
  const order: string[] = []
  const visit = (ns: string): void => {
    if (order.includes(ns)) return
    for (const d of after.get(ns) ?? []) visit(d)
    order.push(ns)
  }
  for (const ns of groups.keys()) visit(ns)
  const batches = order.map(
    (ns) => `ip ${ns ? `-n ${ns} ` : ''}-batch - <<'EOB'\n${groups.get(ns)!.join('\n')}\nEOB`,
  )
  return [...batches, ...rest].join('\n') + '\n'
}

function teardownScript(script: string): string {
  return script
    .split('\n')
    .flatMap((l) => (/^#   (ip |ovs-vsctl )/.test(l) ? [l.slice(4)] : []))
    .join('\n')
}

/** As the anchors' wait_no_veth: a look every 5 ms (a busy loop would slow the kernel's cleanup). */
function waitNoVeth(): void {
  const end = Date.now() + 120_000
  const pause = new Int32Array(new SharedArrayBuffer(4))
  while (Date.now() < end) {
    const out = spawnSync('ip', ['-o', 'link', 'show', 'type', 'veth'], { encoding: 'utf8' }).stdout
    if (!out.trim()) return
    Atomics.wait(pause, 0, 0, 5)
  }
}

function main(): void {
  const [method = '', file = '', run = '1'] = process.argv.slice(2)
  const name =
    /^name: (\S+)/m.exec(require('node:fs').readFileSync(file, 'utf8') as string)?.[1] ?? ''
  let errs = 0
  let createS = NaN
  let teardownS = NaN
  const t = (): number => performance.now()
  const script = method === 'nsdn-lab' ? '' : nsdn(['lab', 'explain', file]).stdout
  const t0 = t()
  if (method === 'nsdn-lab') {
    const r = nsdn(['lab', 'deploy', file])
    if (r.status !== 0) errs++, process.stderr.write(r.stderr)
  } else if (bash(method === 'ip' ? script : batchify(script)) !== 0) errs++
  createS = (t() - t0) / 1000
  const v = nsdn(['lab', 'verify', file])
  const verified = v.status === 0
  if (!verified) process.stderr.write(v.stdout + v.stderr)
  const t2 = t()
  if (method === 'nsdn-lab') {
    const d = nsdn(['lab', 'destroy', name])
    if (d.status !== 0) errs++, process.stderr.write(d.stderr)
  } else {
    if (bash(method === 'ip' ? teardownScript(script) : batchify(teardownScript(script))) !== 0)
      errs++
    waitNoVeth()
  }
  teardownS = (t() - t2) / 1000
  const f = (x: number): string => x.toFixed(4)
  process.stdout.write(
    `RESULT method=${method} lab=${name} run=${run} create_s=${f(createS)} ` +
      `verify=${verified ? 'ok' : 'FAIL'} teardown_s=${f(teardownS)} errors=${errs}\n`,
  )
}

if (require.main === module) {
  if (process.pid !== 1 && !inSandbox())
    process.exit(runSandboxed([process.execPath, ...process.execArgv, ...process.argv.slice(1)]))
  main()
}
