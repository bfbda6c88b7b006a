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
import crypto from 'node:crypto'
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
 * Containers' cgroups are host-global: each page's go under a parent of its own, nsdn/help-R-PAGE
 * (one per page: two pages' containers "web" would share a group under one parent, and pages
 * creating one new parent at once race on its v1 cpuset).
 */
const CGROUP_PREFIX = `help-${crypto.randomBytes(4).toString('hex')}-`

/**
 * Each sandbox first hides the host's /tmp, /var/lib (an example may write there: a run
 * directory, the IPAM leases in /var/lib/cni, images and containers in /var/lib/nsdn, an LXC
 * config), /etc/cni, /opt and /host (CNI plugins installed, conflists) and puts `nsdn` (this
 * build) and `sudo` (we are root) on PATH.
 */
const MASKED = ['/tmp', '/var/lib', '/etc/cni', '/opt', '/host']
// Mount points this host lacks are made for the run and removed after it (they stay empty:
// every page writes into its own tmpfs on them).
const madeMountPoints = MASKED.filter((d) => !fs.existsSync(d))
for (const d of madeMountPoints) fs.mkdirSync(d)
after(() => {
  for (const d of madeMountPoints) fs.rmdirSync(d)
})
const PRELUDE = [
  // The repository (this build, node_modules) may live below a masked directory: keep it.
  `mkdir -p /run/nsdn-t-repo && mount --bind ${REPO} /run/nsdn-t-repo`,
  ...MASKED.map((d) => `mount -t tmpfs nsdn-t ${d}`),
  `mkdir -p ${REPO} && mount --move /run/nsdn-t-repo ${REPO}`,
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

/** A busybox root filesystem ./rootfs (busybox is static), and the image made of it. */
const rootfs = [
  'mkdir -p rootfs/bin rootfs/etc rootfs/root rootfs/tmp',
  'cp /bin/busybox rootfs/bin/',
  'for a in $(/bin/busybox --list); do [ -e rootfs/bin/$a ] || ln -s busybox rootfs/bin/$a; done',
  "echo 'root:x:0:0:root:/root:/bin/sh' > rootfs/etc/passwd",
]
const image = [...rootfs, 'nsdn image import busybox ./rootfs']
const web = [...image, 'nsdn run --name web --image busybox -d -- sleep 1d']
const stopped = [...web, 'nsdn stop -t 0 web']
/** An LXC container web, as lxc-create leaves it. */
const lxc = [
  'mkdir -p /var/lib/lxc/web',
  'cp -a rootfs /var/lib/lxc/web/rootfs',
  `printf '%s\\n' 'lxc.uts.name = web' 'lxc.rootfs.path = dir:/var/lib/lxc/web/rootfs' ` +
    `'lxc.cgroup2.memory.max = 64M' 'lxc.init.cmd = /bin/httpd -f' > /var/lib/lxc/web/config`,
]
/** A conflist of nsdn's plugins (bridge, its IPAM's leases on the /var/lib tmpfs). */
const conflist = (file: string): string =>
  `mkdir -p $(dirname ${file}) && echo '{"cniVersion":"1.0.0","name":"lab","plugins":[` +
  `{"type":"nsdn-bridge","bridge":"br-lab","isGateway":true,"ipam":{"type":"nsdn-ipam",` +
  `"dataDir":"/var/lib/cni/networks","subnet":"10.10.0.0/24"}}]}' > ${file}`
const cni = ['nsdn cni install /opt/cni/bin', conflist('lab.conflist'), 'ip netns add c1']
const cniAdded = [...cni, 'nsdn cni add lab.conflist c1 /run/netns/c1']
const scenarios = [`ln -s ${REPO}/scenarios scenarios`]
const vlan = [...scenarios, 'nsdn lab deploy scenarios/02-ovs-vlan.yaml']
const labYaml = [...scenarios, 'cp scenarios/01-netns-veth.yaml lab.yaml']

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
  cni: [conflist('/etc/cni/net.d/10-lab.conflist'), 'ip netns add c1'],
  'cni add': cni,
  'cni del': cniAdded,
  'cni check': cniAdded,
  'cni status': cni,
  'cni gc': cniAdded,
  run: [...rootfs, conflist('/etc/cni/net.d/10-lab.conflist')],
  create: [...image, ...lxc],
  // the container's command ends, so `start web` (attached) returns with it
  start: [...image, 'nsdn create --name web --image busybox -- true'],
  exec: web,
  // attach follows the container until it stops
  attach: [...image, "nsdn run --name web --image busybox -d -- sh -c 'sleep 5; echo bye'"],
  stop: web,
  // httpd re-reads its config on SIGHUP, and ends on SIGTERM
  kill: [...image, 'nsdn run --name web --image busybox -d -- httpd -f'],
  freeze: web,
  thaw: [...web, 'nsdn freeze web'],
  rm: [...stopped, 'nsdn run --name web2 --image busybox -d -- sleep 1d'],
  ps: [...stopped, 'nsdn run --name web2 --image busybox -d -- sleep 1d'],
  info: web,
  logs: [...image, 'nsdn run --name web --image busybox -- echo hello'],
  diff: [...web, 'nsdn exec web -- touch /etc/motd'],
  clone: stopped,
  commit: [...web, 'nsdn exec web -- touch /etc/motd'],
  image: rootfs,
  'image import': [...rootfs, 'tar -czf debian.tar.gz -C rootfs .'],
  'image list': image,
  'image rm': image,
  lab: scenarios,
  'lab deploy': labYaml,
  'lab destroy': [...vlan, 'nsdn lab deploy scenarios/01-netns-veth.yaml'],
  'lab list': vlan,
  'lab inspect': vlan,
  'lab validate': [...scenarios, 'cp scenarios/clab/two-hosts.clab.yml topo.clab.yml'],
  'lab exec': vlan,
  'lab verify': vlan,
  'lab graph': vlan,
  'lab explain': labYaml,
  'lab serve': [...vlan, 'ip link set lo up'],
}

/** Shell lines run after a page's examples (whatever they left; `|| true`: maybe gone). */
const containers = ['web', 'web2', 't1', 'n1', 'c1'].map(
  (c) => `nsdn rm -f ${c} 2>/dev/null || true`,
)
const labs = [
  'nsdn lab destroy vlan 2>/dev/null || true',
  'nsdn lab destroy netns 2>/dev/null || true',
]
const CLEANUP: Record<string, string[]> = Object.fromEntries([
  ...[
    'run',
    'create',
    'start',
    'exec',
    'attach',
    'stop',
    'kill',
    'freeze',
    'thaw',
    'rm',
    'ps',
    'info',
    'logs',
    'diff',
    'clone',
    'commit',
  ].map((p) => [p, containers]),
  ...[
    'lab',
    'lab deploy',
    'lab destroy',
    'lab list',
    'lab inspect',
    'lab exec',
    'lab verify',
    'lab graph',
    'lab serve',
  ].map((p) => [p, labs]),
])

/** Shell lines run after a page's examples, and what their output must match. */
const AFTER: Record<string, [string, RegExp]> = {
  ovs: ['ovs-vsctl --db=unix:/run/nsdn/ovs/db.sock get Port veth-ns1 tag', /^100$/],
  'ovs add-port': [
    'ovs-vsctl --db=unix:/run/nsdn/ovs/db.sock get Port veth-ns2 tag -- get Port veth-ns3 trunks',
    /^200\n\[100, 200\]$/,
  ],
  'net attach': ['ip -n h2 -br addr show eth0', /10\.20\.0\.\d+\/32/],
  // `nsdn cni agent &` returns at once: the agent must be there, listening
  'cni agent': [
    'for i in $(seq 100); do [ -S /run/nsdn/cni.sock ] && break; sleep 0.1; done; ' +
      '[ -S /run/nsdn/cni.sock ] && echo listening',
    /^listening$/,
  ],
  // `nsdn lab serve ... &` returns at once: it must answer 403 without the token, and let the
  // printed URL in (303 to the page, the token moved to a cookie)
  'lab serve': [
    "for i in $(seq 100); do grep -q 'token=' 0.out && break; sleep 0.1; done; " +
      "no=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8280/); " +
      "yes=$(curl -s -o /dev/null -w '%{http_code}' \"$(grep -o 'http://[^ ]*' 0.out)\"); " +
      'echo "$no $yes"',
    /^403 303$/,
  ],
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
      `export NSDN_CGROUP_PARENT=nsdn/${CGROUP_PREFIX}${path.basename(dir)}`,
      `cd ${dir}`,
      `(set -e; ${(SETUP[page] ?? ['true']).join('\n')}) > setup.log 2>&1 || exit 90`,
      ...lines.map(
        (l, i) => `bash -c ${q(l)} > ${i}.out 2> ${i}.err < /dev/null; echo $? > ${i}.rc`,
      ),
      ...(check ? [`${check[0]} > after.out 2>&1`] : []),
      ...(CLEANUP[page] ?? []).map((l) => `${l} >> cleanup.log 2>&1`),
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

/** Our pages' cgroup parents in each cgroup hierarchy (/proc/self/mountinfo lists them). */
function cgroupParents(): string[] {
  return nsdnParents().flatMap((d) =>
    subdirs(d).filter((s) => path.basename(s).startsWith(CGROUP_PREFIX)),
  )
}

/** nsdn's own cgroup parent in each hierarchy, where it exists. */
function nsdnParents(): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => / - cgroup2? /.test(l))
    .map((l) => path.join(l.split(' ')[4]!, 'nsdn'))
    .filter((d) => fs.existsSync(d))
}

function subdirs(d: string): string[] {
  return fs
    .readdirSync(d, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => path.join(d, e.name))
}

test('nothing of ours remains', () => {
  assert.deepEqual(netnsNames(), [])
  assert.deepEqual(strayLinks(), [])
  const dirs = cgroupParents()
  const groups = dirs.flatMap(subdirs)
  // a failed page may leave its containers' groups (empty: its sandbox killed them)
  // cpu and cpuacct are one hierarchy mounted twice: a directory may be gone already
  for (const d of [...groups, ...dirs]) if (fs.existsSync(d)) fs.rmdirSync(d)
  assert.deepEqual(groups, [], "containers' cgroups left")
})
