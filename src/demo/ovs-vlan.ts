/**
 * The main job: the LXC book's Open vSwitch walkthrough as a lab (scenarios/02-ovs-vlan.yaml),
 * run through nsdn's lab commands in a private sandbox: validate it, deploy it with every step
 * explained, inspect it, verify its checks (VLAN 100 reaches, VLAN 200 is isolated, iperf3
 * moves data), show its graph, destroy it, and prove nothing is left.
 * @module
 */
import { spawnSync } from 'node:child_process'
import path from 'node:path'
import { verdict } from './verdict.js'

export const SCENARIO = path.resolve(__dirname, '../../../scenarios/02-ovs-vlan.yaml')
const MAIN = path.resolve(__dirname, '../cli/main.js')
const out = (line: string): void => void process.stdout.write(line + '\n')
const shown = (a: string): string => (a === SCENARIO ? path.relative(process.cwd(), a) : a)

/** The walkthrough: what to say, and the nsdn command that shows it. */
export const STEPS: { say: string; nsdn: string[] }[] = [
  {
    say: 'the lab file is checked: schema, names, subnets, VLANs, the kernel features it needs',
    nsdn: ['lab', 'validate', SCENARIO],
  },
  {
    say: 'deploy it: a private Open vSwitch, three namespaces, veth pairs, OVS ports tagged 100/200/100 (each step explained)',
    nsdn: ['--explain', 'lab', 'deploy', SCENARIO],
  },
  { say: 'what was built', nsdn: ['lab', 'inspect', 'vlan'] },
  {
    say: "the lab's checks: ns1 and ns3 share VLAN 100, ns2 is alone in VLAN 200",
    nsdn: ['lab', 'verify', 'vlan'],
  },
  {
    say: 'its picture (Mermaid; --format svg draws it, --format dot for Graphviz)',
    nsdn: ['lab', 'graph', 'vlan', '--format', 'mermaid'],
  },
  { say: 'remove everything, from the lab record', nsdn: ['--explain', 'lab', 'destroy', 'vlan'] },
]

/** Run the walkthrough; returns the exit status (0 = every step and check held). */
export async function runDemo(): Promise<number> {
  const verdicts: string[] = []
  let ok = true
  for (const s of STEPS) {
    out(`\n# ${s.say}`)
    out(`$ nsdn ${s.nsdn.map(shown).join(' ')}`)
    const r = spawnSync(process.execPath, [MAIN, ...s.nsdn], { stdio: 'inherit' })
    const passed = r.status === 0
    verdicts.push(
      `${passed ? 'ok  ' : 'FAIL'} nsdn ${s.nsdn
        .filter((a) => a !== '--explain')
        .slice(0, 2)
        .join(' ')}`,
    )
    // After a failure, still destroy (the last step), then stop.
    if (!passed) {
      ok = false
      if (s !== STEPS.at(-1))
        spawnSync(process.execPath, [MAIN, 'lab', 'destroy', 'vlan'], { stdio: 'inherit' })
      break
    }
  }
  return verdict(verdicts, ok, "the LXC book's OVS VLAN walkthrough, as an nsdn lab")
}
