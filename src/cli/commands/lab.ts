/**
 * `nsdn lab deploy|destroy|list|inspect|validate|exec|verify|graph|explain`: lab topologies
 * from YAML files (scenarios/). The lab engine is loaded only when a lab command runs: other
 * commands do not pay for yaml and ajv at start-up.
 * @module
 */
import fs from 'node:fs'
import type { Command } from 'commander'
import { NsdnError } from '../../errors.js'
import { opMode } from '../../op.js'
import { examples, globals, needsRoot } from '../context.js'
import { printJson, printTable } from '../output.js'
import { register as registerServe } from './lab-serve.js'

const engine = (): Promise<typeof import('../../lab/deploy.js')> => import('../../lab/deploy.js')
const err = (line: string): void => void process.stderr.write(line + '\n')
const out = (line: string): void => void process.stdout.write(line + '\n')

/** A lab's name: the argument itself, or the `name:` of the file it names. */
async function labName(ref: string): Promise<string> {
  if (!(ref.includes('/') || /\.ya?ml$/.test(ref))) return ref
  if (!fs.existsSync(ref))
    throw new NsdnError('E_NOT_FOUND', `no lab file ${ref}`, {
      hint: 'give the lab name instead ("nsdn lab list")',
    })
  const { loadFile } = await import('../../lab/load.js')
  return loadFile(ref).raw.name
}

/** A bar on a terminal, a line per quarter otherwise (logs stay readable). */
function progress(): (done: number, total: number) => void {
  if (opMode.explain || opMode.dryRun) return () => undefined
  const tty = process.stderr.isTTY
  let shown = -1
  return (done, total) => {
    if (tty) {
      const w = 30
      const n = Math.round((done / total) * w)
      process.stderr.write(
        `\r[${'#'.repeat(n)}${' '.repeat(w - n)}] ${done}/${total} steps${done === total ? '\n' : ''}`,
      )
      return
    }
    const q = Math.floor((done / total) * 4)
    if (q > shown) {
      shown = q
      err(`deploy: ${done}/${total} steps`)
    }
  }
}

export function register(program: Command): void {
  const lab = program
    .command('lab')
    .description('lab topologies from YAML files: deploy, check, show, explain, destroy')
  examples(
    lab,
    'nsdn lab deploy scenarios/02-ovs-vlan.yaml',
    'nsdn lab verify vlan',
    'nsdn lab graph vlan --format svg > vlan.svg',
    'nsdn lab destroy vlan',
  )

  const deploy = lab
    .command('deploy')
    .description('build the lab (everything validated first; an unchanged lab is left as it is)')
    .argument('<file>', 'lab file (YAML)')
    .action(async (file: string) => {
      // nft reads the firewall (br_netfilter check) while the file is parsed
      ;(await import('../../lab/preflight.js')).readFirewallSoon()
      const e = await engine()
      const { loadFile } = await import('../../lab/load.js')
      const { resolve } = await import('../../lab/resolve.js')
      const t0 = performance.now()
      const l = resolve(loadFile(file))
      for (const n of l.notes) err(`note: ${n}`)
      const r = await e.deploy(l, { progress: progress() })
      const s = ((performance.now() - t0) / 1000).toFixed(2)
      const what = r === 'unchanged' ? 'unchanged, nothing to do' : `${r}, ready`
      // stdout: stderr carries only what --explain prints, so that it pastes as it is
      out(
        `lab ${l.name}: ${what} (${l.nodes.length} nodes, ${l.switches.length} switches, ${l.links.length} links; ${s} s)`,
      )
    })
  examples(
    needsRoot(deploy),
    'nsdn lab deploy scenarios/01-netns-veth.yaml',
    'nsdn --explain lab deploy lab.yaml',
  )

  const destroy = lab
    .command('destroy')
    .description(
      'remove everything the lab made (from its record: the file may have changed or be gone)',
    )
    .argument('<lab>', 'lab name or file')
    .action(async (ref: string) => {
      const name = await labName(ref)
      // only the undo: neither the YAML loader nor the planner
      await (await import('../../lab/destroy.js')).destroy(name)
      out(`lab ${name}: destroyed`)
    })
  examples(
    needsRoot(destroy),
    'nsdn lab destroy vlan',
    'nsdn --explain lab destroy scenarios/01-netns-veth.yaml',
  )

  const list = lab
    .command('list')
    .description('the deployed labs')
    .action(async (_o: unknown, cmd: Command) => {
      const { listLabs, readLab } = await import('../../lab/state.js')
      const rows = listLabs().map((n) => {
        const r = readLab(n)!
        return {
          name: n,
          file: r.meta.file,
          state: r.meta.complete ? 'deployed' : 'incomplete',
          objects: r.created.length,
        }
      })
      if (globals(cmd).json) printJson(rows)
      else
        printTable(
          ['NAME', 'STATE', 'OBJECTS', 'FILE'],
          rows.map((r) => [r.name, r.state, r.objects, r.file]),
        )
    })
  examples(list, 'nsdn lab list', 'nsdn --json lab list')

  const inspect = lab
    .command('inspect')
    .description('the nodes, switches, interfaces and addresses of a lab (table, or --json)')
    .argument('<lab>', 'lab name or file')
    .action(async (ref: string, _o: unknown, cmd: Command) => {
      const l = (await engine()).labFrom(ref)
      const ends = l.links.flatMap((k) => [k.a, k.b])
      const { containerStatus } = await import('../../lab/containers.js')
      const rows = [
        ...(await Promise.all(
          l.nodes.map(async (n) => ({
            node: n.name,
            kind: n.kind,
            netns: n.ns ?? '(root)',
            ...(n.container
              ? { container: { image: n.container.image, ...(await containerStatus(n.ns!)) } }
              : {}),
            ifaces: ends.filter((e) => e.node === n.name),
          })),
        )),
        ...l.switches.map((s) => ({
          node: s.name,
          kind: s.kind,
          netns: `(root) ${s.dev}`,
          ifaces: ends.filter((e) => e.node === s.name),
        })),
      ]
      if (globals(cmd).json)
        return printJson({
          name: l.name,
          file: l.file,
          nodes: rows.map((r) => ({
            ...r,
            ifaces: r.ifaces.map((e) => ({
              dev: e.dev,
              addrs: e.addrs,
              ...(e.tag !== undefined ? { vlan: e.tag } : {}),
              ...(e.trunks ? { trunks: e.trunks } : {}),
              ...(e.rate !== undefined ? { rate: e.rate } : {}),
            })),
          })),
          checks: l.checks.map((c) => ({
            from: c.from.name,
            to: c.to,
            addr: c.addr,
            expect: c.expect,
          })),
        })
      printTable(
        ['NODE', 'KIND', 'NETNS', 'INTERFACES'],
        rows.map((r) => [
          r.node,
          'container' in r && r.container
            ? `${r.kind} (${r.container.status}${r.container.pid ? `, pid ${r.container.pid}` : ''})`
            : r.kind,
          r.netns,
          r.ifaces
            .map((e) =>
              [
                e.dev,
                ...e.addrs,
                e.tag !== undefined ? `vlan ${e.tag}` : '',
                e.trunks ? `trunks ${e.trunks.join(',')}` : '',
              ]
                .filter(Boolean)
                .join(' '),
            )
            .join('; '),
        ]),
      )
    })

  examples(inspect, 'nsdn lab inspect vlan', 'nsdn --json lab inspect scenarios/02-ovs-vlan.yaml')

  const validate = lab
    .command('validate')
    .description('every check deploy makes, nothing touched (for CI of lab files)')
    .argument('<file>', 'lab file (YAML)')
    .action(async (file: string) => {
      const l = await (await engine()).validateFile(file)
      for (const n of l.notes) err(`note: ${n}`)
      out(
        `${file}: ok: lab ${l.name}, ${l.nodes.length} nodes, ${l.switches.length} switches, ${l.links.length} links, ${l.checks.length} checks`,
      )
    })

  examples(
    validate,
    'nsdn lab validate scenarios/05-routers.yaml',
    'nsdn lab validate topo.clab.yml',
  )

  const exec = lab
    .command('exec')
    .description(
      "run a command in a lab node's namespace (a container node's namespaces); exits with its status",
    )
    .argument('<lab>', 'lab name or file')
    .argument('<node>', 'node name')
    .argument('<cmd...>', 'the command (after --)')
    .action(async (ref: string, node: string, argv: string[]) => {
      const l = (await engine()).labFrom(ref)
      const n = l.nodes.find((x) => x.name === node)
      if (!n)
        throw new NsdnError('E_NOT_FOUND', `lab ${l.name} has no node "${node}"`, {
          hint: `its nodes: ${l.nodes.map((x) => x.name).join(', ')}`,
        })
      if (n.container) {
        // a container node: in every namespace of the container, not only its netns
        const { exec } = await import('../../runtime/exec.js')
        process.exitCode = await exec(n.container.name, argv)
        return
      }
      const { NetNs, spawnInNetns } = await import('../../netns/netns.js')
      const { spawn } = await import('node:child_process')
      const ns = n.ns ? NetNs.open(n.ns) : undefined
      const child = ns
        ? spawnInNetns(ns, argv, { stdio: 'inherit' })
        : spawn(argv[0]!, argv.slice(1), { stdio: 'inherit' })
      ns?.close()
      process.exitCode = await new Promise<number>((res) => {
        child.on('error', (e) => {
          err(`nsdn: cannot run ${argv[0]}: ${e.message}`)
          res(127)
        })
        child.on('exit', (code) => res(code ?? 1))
      })
    })
  examples(needsRoot(exec), 'nsdn lab exec vlan ns1 -- ping -c1 192.168.0.3')

  const verify = lab
    .command('verify')
    .description("run the lab's checks: pass/fail per check; fails when one fails")
    .argument('<lab>', 'lab name or file')
    .action(async (ref: string, _o: unknown, cmd: Command) => {
      const l = (await engine()).labFrom(ref)
      const { verify: run, describeCheck } = await import('../../lab/verify.js')
      const results = await run(l)
      if (globals(cmd).json)
        printJson(
          results.map((r) => ({
            from: r.check.from.name,
            to: r.check.to,
            expect: r.check.expect,
            ok: r.ok,
            detail: r.detail,
          })),
        )
      else for (const r of results) out(describeCheck(r))
      const failed = results.filter((r) => !r.ok).length
      if (failed)
        throw new NsdnError(
          'E_TRY_AGAIN',
          `lab ${l.name}: ${failed} of ${results.length} checks failed`,
        )
      if (!globals(cmd).json) out(`lab ${l.name}: all ${results.length} checks passed`)
    })
  examples(needsRoot(verify), 'nsdn lab verify vlan')

  const graph = lab
    .command('graph')
    .description('the lab as a picture: dot, mermaid, or svg (drawn without Graphviz)')
    .argument('<lab>', 'lab name or file')
    .option('--format <format>', 'dot | mermaid | svg', 'svg')
    .action(async (ref: string, o: { format: string }) => {
      const l = (await engine()).labFrom(ref)
      const g = await import('../../lab/graph.js')
      const f = { dot: g.toDot, mermaid: g.toMermaid, svg: g.toSvg }[o.format]
      if (!f)
        throw new NsdnError('E_USAGE', `unknown format "${o.format}"`, {
          hint: 'use dot, mermaid or svg',
        })
      process.stdout.write(f(l))
    })

  examples(
    graph,
    'nsdn lab graph vlan --format svg > vlan.svg',
    'nsdn lab graph scenarios/05-routers.yaml --format mermaid',
  )

  const explain = lab
    .command('explain')
    .description(
      'the whole lab as a commented shell script of ip, sysctl, nft, tc and ovs-vsctl commands',
    )
    .argument('<file>', 'lab file (YAML)')
    .action(async (file: string) => {
      const l = (await engine()).labFrom(file)
      const { explainScript } = await import('../../lab/explain.js')
      process.stdout.write(await explainScript(l))
    })
  examples(
    explain,
    'nsdn lab explain scenarios/01-netns-veth.yaml',
    'nsdn lab explain lab.yaml | sudo bash',
  )
  registerServe(lab)
}
