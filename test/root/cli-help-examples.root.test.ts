import { sandboxThisFile } from '../helpers/sandbox.js'
sandboxThisFile()

/**
 * Every example in every `--help` runs, as printed, the examples of one help page in order
 * (as a reader would try them) in a fresh sandbox of their own (`nsdn sandbox`), after the
 * setup that page assumes (a namespace h1, a link eth0, a running OVS...). A new example runs
 * here without a word; a page whose examples need something gets a line in SETUP.
 */
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { after, test } from 'node:test'
import { allCommands, buildProgram } from '../../src/cli/program.js'
import { probeLinkKind } from '../../src/netlink/features.js'
import { netnsNames, strayLinks } from '../helpers/kernel.js'

const REPO = path.resolve(__dirname, '../../..')
const MAIN = path.join(REPO, 'dist/src/cli/main.js')
// Not under /run (each sandbox mounts its own) nor /tmp (hidden below, see PRELUDE).
const work = fs.mkdtempSync('/var/tmp/nsdn-t-help-')
after(() => fs.rmSync(work, { recursive: true, force: true }))

/** The examples of each help page: its command path ('' for nsdn itself) -> command lines. */
function helpExamples(): Map<string, string[]> {
  const out = new Map<string, string[]>()
  for (const cmd of allCommands(buildProgram())) {
    let help = ''
    cmd.configureOutput({ writeOut: (t) => void (help += t) })
    cmd.outputHelp()
    const names: string[] = []
    for (let c: typeof cmd | null = cmd; c?.parent; c = c.parent) names.unshift(c.name())
    const lines = [...help.matchAll(/^ {2}\$ (.+)$/gm)].map((m) => m[1]!)
    if (lines.length) out.set(names.join(' '), lines)
  }
  return out
}

/**
 * Each sandbox first hides the host's /tmp and /var/lib (an example may write there: a run
 * directory, the IPAM leases in /var/lib/cni) and puts `nsdn` (this build) and `sudo` (we are
 * root) on PATH.
 */
const PRELUDE = [
  'mount -t tmpfs nsdn-t-tmp /tmp',
  'mount -t tmpfs nsdn-t-lib /var/lib',
  `export PATH=${work}/bin:$PATH`,
]

const h1eth0 = ['ip netns add h1', 'ip -n h1 link add eth0 type veth peer name eth1']
const h1up = [
  ...h1eth0,
  'ip -n h1 link set eth0 up',
  'ip -n h1 link set eth1 up',
  'ip -n h1 addr add 10.0.0.2/24 dev eth0',
]
const br0 = ['ip link add br0 type bridge', 'ip link set br0 up', 'ip addr add 10.0.0.1/24 dev br0']
const veths = ['veth-ns1', 'veth-ns2', 'veth-ns3'].map(
  (v) => `ip link add ${v} type veth peer name ${v}p`,
)
const ovs = ['nsdn ovs start', 'nsdn ovs add-br OVS-1', ...veths]
const labConf =
  `'{"name":"lab","bridge":"br-lab","isGateway":true,` +
  `"ipam":{"type":"host-local","subnet":"10.10.0.0/24"}}'`
const attached = ['ip netns add h1', `nsdn net attach h1 --driver bridge --conf ${labConf}`]

/** What the examples of a page assume, as shell lines (any tool; this is the test's setup). */
const SETUP: Record<string, string[]> = {
  'netns del': ['ip netns add h1'],
  'netns exec': [
    'ip netns add h1',
    'ip netns add h2',
    'ip link add eth0 netns h1 type veth peer name eth0 netns h2',
    'ip -n h1 addr add 10.0.0.1/24 dev eth0',
    'ip -n h2 addr add 10.0.0.2/24 dev eth0',
    'ip -n h1 link set eth0 up',
    'ip -n h2 link set eth0 up',
  ],
  link: ['ip netns add h1'],
  'link add': ['ip netns add h1', 'ip link add eth0 type veth peer name eth0p'],
  'link set': [
    'ip netns add h1',
    'ip link add br0 type bridge',
    'ip link add v-h1 type veth peer name v-h1p',
    'ip link add veth1 type veth peer name veth1p',
  ],
  'link del': ['ip link add br0 type bridge', ...h1eth0],
  'link list': ['ip netns add h1'],
  addr: h1eth0,
  'addr add': ['ip link add br0 type bridge', ...h1eth0],
  'addr del': br0,
  'addr list': h1eth0,
  route: h1up,
  'route add': [...h1up, ...br0],
  'route del': [
    ...h1up,
    ...br0,
    'ip -n h1 route add default via 10.0.0.1',
    'ip route add 10.1.0.0/16 via 10.0.0.2 dev br0 metric 100',
    'ip -n h1 -6 route add default dev eth0',
  ],
  'route list': ['ip netns add h1'],
  net: ['ip netns add h1'],
  'net attach': [
    'ip netns add h1',
    'ip netns add h2',
    `echo '{"name":"rlab","ipam":{"type":"host-local","subnet":"10.20.0.0/24"}}' > routed.json`,
  ],
  'net detach': attached,
  'net check': attached,
  'net drivers': ['mkdir my-drivers'],
  ovs: veths,
  'ovs stop': ['nsdn ovs start'],
  'ovs status': ['nsdn ovs start'],
  'ovs add-br': ['nsdn ovs start'],
  'ovs del-br': ovs,
  'ovs add-port': ovs,
  'ovs del-port': [...ovs, 'nsdn ovs add-port OVS-1 veth-ns1'],
  'ovs set-port': [...ovs, 'nsdn ovs add-port OVS-1 veth-ns1'],
}

/** Shell lines run after a page's examples, and what their output must match. */
const AFTER: Record<string, [string, RegExp]> = {
  ovs: ['ovs-vsctl --db=unix:/run/nsdn/ovs/db.sock get Port veth-ns1 tag', /^100$/],
  'ovs add-port': [
    'ovs-vsctl --db=unix:/run/nsdn/ovs/db.sock get Port veth-ns2 tag -- get Port veth-ns3 trunks',
    /^200\n\[100, 200\]$/,
  ],
  'net attach': ['ip -n h2 -br addr show eth0', /10\.20\.0\.\d+\/32/],
}

/** Examples another test runs as they are, and checks more closely than an exit status. */
const RUN_ELSEWHERE: Record<string, string> = {
  'sudo nsdn demo': 'demo.root.test.ts runs it and checks its verdict and its teaching lines',
}

/** An example this kernel may refuse: decided by probe, as nsdn decides it. */
async function expected(line: string): Promise<{ status: number; stderr?: RegExp }> {
  if (/ type vlan /.test(line) && !(await probeLinkKind('vlan')))
    return { status: 69, stderr: /this kernel lacks 802\.1Q VLAN devices \(CONFIG_VLAN_8021Q\)/ }
  return { status: 0 }
}

fs.mkdirSync(path.join(work, 'bin'))
fs.writeFileSync(path.join(work, 'bin/nsdn'), `#!/bin/sh\nexec ${process.execPath} ${MAIN} "$@"\n`)
fs.writeFileSync(path.join(work, 'bin/sudo'), '#!/bin/sh\nexec "$@"\n')
for (const f of ['nsdn', 'sudo']) fs.chmodSync(path.join(work, 'bin', f), 0o755)

const pages = helpExamples()

test('the help pages have examples to run', () => {
  assert.ok(pages.size >= 30, `only ${pages.size} pages with examples`)
  for (const page of Object.keys(SETUP))
    assert.ok(pages.has(page), `SETUP of "${page}": no such page`)
})

/** Run a shell script in a fresh `nsdn sandbox`; its exit status and stderr. */
function inSandbox(script: string): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN, 'sandbox', '--', 'bash', '-c', script], {
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    child.on('close', (status) => resolve({ status, stderr }))
  })
}

/** Run the examples of one page after its setup; their exit statuses and output are files. */
async function runPage(page: string, all: string[]): Promise<void> {
  const lines = all.filter((l) => !RUN_ELSEWHERE[l])
  {
    const dir = fs.mkdtempSync(path.join(work, 'page-'))
    const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`
    const check = AFTER[page]
    const script = [
      'set -u',
      ...PRELUDE,
      `cd ${dir}`,
      `(set -e; ${(SETUP[page] ?? ['true']).join('\n')}) > setup.log 2>&1 || exit 90`,
      ...lines.map(
        (l, i) => `bash -c ${q(l)} > ${i}.out 2> ${i}.err < /dev/null; echo $? > ${i}.rc`,
      ),
      ...(check ? [`${check[0]} > after.out 2>&1`] : []),
    ].join('\n')
    const r = await inSandbox(script)
    const file = (f: string): string => fs.readFileSync(path.join(dir, f), 'utf8')
    const setupLog = fs.existsSync(path.join(dir, 'setup.log')) ? file('setup.log') : ''
    assert.equal(r.status, 0, `sandbox: ${r.status} ${r.stderr} setup: ${setupLog}`)
    for (const [i, line] of lines.entries()) {
      const want = await expected(line)
      const [status, stderr] = [Number(file(`${i}.rc`)), file(`${i}.err`)]
      assert.equal(status, want.status, `$ ${line}\n${stderr}${file(`${i}.out`)}`)
      if (want.stderr) assert.match(stderr, want.stderr, line)
    }
    if (check) assert.match(file('after.out').trim(), check[1], check[0])
  }
}

// Pages are independent (a sandbox each), so a few run at once: much of their time is waiting.
test('every example of every help page runs', { concurrency: 3 }, async (t) => {
  const runs = [...pages].map(([page, lines]) =>
    t.test(`nsdn ${page} --help`.replace('  ', ' '), async (st) => {
      for (const l of lines.filter((x) => RUN_ELSEWHERE[x]))
        st.test(`$ ${l}`, { skip: RUN_ELSEWHERE[l] ?? '' }, () => undefined)
      await runPage(page, lines)
    }),
  )
  await Promise.all(runs)
})

test('ovs add-port: tag 100 without "=" is refused, saying what to write', () => {
  const r = spawnSync(
    process.execPath,
    [MAIN, '--dry-run', 'ovs', 'add-port', 'OVS-1', 'veth-ns1', 'tag', '100'],
    { encoding: 'utf8' },
  )
  assert.equal(r.status, 64, r.stderr)
  assert.match(
    r.stderr,
    /^nsdn: add-port: unknown setting "tag" \[E_USAGE\]\n {2}hint: write tag=N/,
  )
})

test('nothing of ours remains', () => {
  assert.deepEqual(netnsNames(), [])
  assert.deepEqual(strayLinks(), [])
})
