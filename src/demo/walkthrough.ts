/**
 * `nsdn demo --commands`: the LXC book's "Network namespaces" walkthrough, typed as nsdn commands with
 * --explain on. Two namespaces on an Open vSwitch bridge through veth pairs ping each other;
 * port tags 100 and 200 isolate them; the same tag joins them again; then everything goes.
 * Each step is printed as the nsdn command, followed (on stderr) by the commands it stands for.
 * @module
 */
import { spawnSync } from 'node:child_process'
import path from 'node:path'
import { ovsRunDir } from '../ovs/daemon.js'
import { verdict } from './verdict.js'

type Step =
  | { say: string }
  | { nsdn: string[] }
  | { ping: [from: string, to: string]; expect: 'reply' | 'silence' }

const ns = (n: 1 | 2): Step[] => [
  { nsdn: ['link', 'add', `eth1-ns${n}`, 'type', 'veth', 'peer', `veth-ns${n}`] },
  { nsdn: ['link', 'set', `eth1-ns${n}`, 'netns', `ns${n}`] },
  { nsdn: ['ovs', 'add-port', 'OVS-1', `veth-ns${n}`] },
  { nsdn: ['link', 'set', `veth-ns${n}`, 'up'] },
  { nsdn: ['-n', `ns${n}`, 'link', 'set', 'lo', 'up'] },
  { nsdn: ['-n', `ns${n}`, 'link', 'set', `eth1-ns${n}`, 'up'] },
  { nsdn: ['-n', `ns${n}`, 'addr', 'add', `192.168.0.${n}/24`, 'dev', `eth1-ns${n}`] },
]

export const WALKTHROUGH: Step[] = [
  { say: 'a private Open vSwitch (userspace datapath: this kernel has no openvswitch module)' },
  { nsdn: ['ovs', 'start'] },
  { say: 'two network namespaces' },
  { nsdn: ['netns', 'add', 'ns1'] },
  { nsdn: ['netns', 'add', 'ns2'] },
  { nsdn: ['netns', 'list'] },
  { say: 'a bridge, and a veth pair per namespace: one end inside, the other a bridge port' },
  { nsdn: ['ovs', 'add-br', 'OVS-1'] },
  ...ns(1),
  ...ns(2),
  { say: 'same L2 segment: ns1 and ns2 reach each other' },
  { ping: ['ns1', '192.168.0.2'], expect: 'reply' },
  { ping: ['ns2', '192.168.0.1'], expect: 'reply' },
  { say: 'VLAN tags 100 and 200 on the two ports: isolated' },
  { nsdn: ['ovs', 'set-port', 'veth-ns1', '100'] },
  { nsdn: ['ovs', 'set-port', 'veth-ns2', '200'] },
  { ping: ['ns1', '192.168.0.2'], expect: 'silence' },
  { ping: ['ns2', '192.168.0.1'], expect: 'silence' },
  { say: 'the same tag on both ports: together again' },
  { nsdn: ['ovs', 'set-port', 'veth-ns2', '100'] },
  { ping: ['ns1', '192.168.0.2'], expect: 'reply' },
]

export const CLEANUP: Step[] = [
  { say: 'remove everything' },
  { nsdn: ['netns', 'del', 'ns1'] },
  { nsdn: ['netns', 'del', 'ns2'] },
  { nsdn: ['ovs', 'del-br', 'OVS-1'] },
  { nsdn: ['ovs', 'stop'] },
]

const MAIN = path.resolve(__dirname, '../cli/main.js')
const out = (line: string): void => void process.stdout.write(line + '\n')

/** The shell the printed lines go to, as `ovs start`'s lines leave it (OVS_RUNDIR exported). */
const shellEnv: NodeJS.ProcessEnv = { ...process.env }

function runNsdn(args: string[]): boolean {
  out(`$ nsdn ${args.join(' ')}`)
  const r = spawnSync(process.execPath, [MAIN, '--explain', ...args], {
    stdio: 'inherit',
    env: shellEnv,
  })
  // Said once: the later steps' ovs-vsctl lines need not name the OVS again.
  if (args[0] === 'ovs' && args[1] === 'start') shellEnv.OVS_RUNDIR = ovsRunDir()
  return r.status === 0
}

/** One ping; "reply" retries for a moment (a new port may not forward at once). */
function ping(from: string, to: string, expect: 'reply' | 'silence'): boolean {
  const argv = ['netns', 'exec', from, '--', 'ping', '-n', '-q', '-c', '1', '-W', '1', to]
  out(`$ nsdn ${argv.join(' ')}    # expect ${expect === 'reply' ? 'a reply' : 'no reply'}`)
  const answered = (): boolean =>
    spawnSync(process.execPath, [MAIN, ...argv], { stdio: 'ignore' }).status === 0
  const tries = Array.from({ length: expect === 'reply' ? 5 : 2 }, () => answered)
  return expect === 'reply' ? tries.some((t) => t()) : !tries.some((t) => t())
}

function run(steps: Step[], verdicts: string[]): boolean {
  for (const s of steps) {
    if ('say' in s) out(`\n# ${s.say}`)
    else if ('nsdn' in s) {
      if (!runNsdn(s.nsdn)) {
        verdicts.push(`FAIL: nsdn ${s.nsdn.join(' ')}`)
        return false
      }
    } else {
      const ok = ping(s.ping[0], s.ping[1], s.expect)
      verdicts.push(`${ok ? 'ok  ' : 'FAIL'} ${s.ping[0]} -> ${s.ping[1]}: ${s.expect}`)
      out(ok ? '  ok' : '  FAILED')
      if (!ok) return false
    }
  }
  return true
}

/** Run the walkthrough and its cleanup; returns the exit status (0 = every check held). */
export async function runWalkthrough(): Promise<number> {
  const verdicts: string[] = []
  let ok = false
  try {
    ok = run(WALKTHROUGH, verdicts)
  } finally {
    ok = run(CLEANUP, verdicts) && ok
  }
  return verdict(verdicts, ok, "the LXC book's OVS VLAN walkthrough works with nsdn")
}
