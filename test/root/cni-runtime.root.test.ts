/**
 * nsdn as a CNI runtime (`nsdn cni add|check|del|gc`) against Debian's reference plugins and
 * against nsdn's own, and a reference-style conflist with only `type` changed running on
 * nsdn's plugins, chained before and after reference plugins (tuning, bandwidth, firewall,
 * portmap). The kernel's state is read with `ip -j`, `tc -j`, `nft -j` and iptables-save;
 * traffic with ping and a TCP connection through a port mapping.
 */
import { sandboxThisFile } from '../helpers/sandbox.js'
sandboxThisFile()

import assert from 'node:assert/strict'
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { after, test } from 'node:test'
import { hostVethName } from '../../src/drivers/veth.js'
import { ipamDataDir, leases } from '../helpers/attach.js'
import { NO_AGENT, REFERENCE_DIR, installBin, nsdn, testNetns } from '../helpers/cni.js'
import { eventually, ipAddrs, ipLinks, netnsNames, pingSoon } from '../helpers/kernel.js'

// No agent in this file: the plugins run in Node processes (the agent has its own tests).
const bin = installBin(NO_AGENT.NSDN_CNI_SOCKET)
const dataDir = ipamDataDir()
const cacheDir = fs.mkdtempSync('/run/nsdn-t-cache-')
const ENV = { CNI_PATH: `${bin}:${REFERENCE_DIR}`, NSDN_CNI_CACHE_DIR: cacheDir }

type Json = Record<string, unknown>

function writeList(name: string, list: Json): string {
  const file = path.join(cacheDir, `${name}.conflist`)
  fs.writeFileSync(file, JSON.stringify(list))
  return file
}

function run(...args: string[]): Json | undefined {
  const a = nsdn(['cni', ...args], ENV)
  assert.equal(a.status, 0, `nsdn cni ${args.join(' ')}: ${a.stderr}`)
  return a.json
}

const netns = (t: { after(fn: () => void): void }): string => testNetns(t, 'r')

const cacheEntry = (net: string, id: string): string =>
  path.join(cacheDir, 'results', `${net}-${id}-eth0`)
/** The container's IPv4 addresses on eth0. */
const hostIp = (ns: string): string[] =>
  ipAddrs(ns)
    .filter((a) => a.startsWith('eth0 ') && !a.includes(':'))
    .map((a) => a.split(' ')[1]!)

/** A reference bridge conflist; `swap` maps reference types to nsdn's. */
function bridgeList(
  name: string,
  subnet: string,
  br: string,
  swap: Json = {},
  extra: Json[] = [],
): Json {
  const t = (ty: string): string => (swap[ty] as string | undefined) ?? ty
  return {
    cniVersion: '1.0.0',
    name,
    plugins: [
      {
        type: t('bridge'),
        bridge: br,
        isGateway: true,
        ipMasq: true,
        hairpinMode: true,
        ipam: {
          type: t('host-local'),
          dataDir,
          ranges: [[{ subnet }]],
          routes: [{ dst: '0.0.0.0/0' }],
        },
      },
      { type: 'tuning', sysctl: { 'net.ipv4.conf.eth0.rp_filter': '0' } },
      ...extra,
    ],
  }
}

test('the runtime side runs the reference plugins: ADD, the libcni cache, CHECK, DEL', (t) => {
  const ns = netns(t)
  const file = writeList('refnet', bridgeList('refnet', '10.81.0.0/24', 'nsdn-t-rb'))
  const r = run('add', file, 'ref1', ns)!
  assert.equal(r.cniVersion, '1.0.0')
  const ip = (r.ips as { address: string }[])[0]!.address
  assert.deepEqual(hostIp(ns), [ip])
  assert.ok(pingSoon('10.81.0.1', ns), 'container pings its gateway')
  // libcni's cache entry, readable by a libcni runtime.
  const entry = JSON.parse(fs.readFileSync(cacheEntry('refnet', 'ref1'), 'utf8')) as Json
  assert.equal(entry.kind, 'cniCacheV1')
  assert.equal(entry.containerId, 'ref1')
  assert.equal(entry.ifName, 'eth0')
  assert.equal(entry.networkName, 'refnet')
  assert.deepEqual(
    JSON.parse(Buffer.from(String(entry.config), 'base64').toString()),
    bridgeList('refnet', '10.81.0.0/24', 'nsdn-t-rb'),
  )
  assert.deepEqual((entry.result as Json).ips, r.ips)
  run('check', file, 'ref1', ns)
  // CHECK sees a change: the address removed behind the plugins' back.
  execFileSync('ip', ['-n', ns, 'addr', 'del', ip, 'dev', 'eth0'])
  const bad = nsdn(['cni', 'check', file, 'ref1', ns], ENV)
  assert.notEqual(bad.status, 0, 'CHECK must fail after the address is gone')
  run('del', file, 'ref1', ns)
  assert.ok(!fs.existsSync(cacheEntry('refnet', 'ref1')), 'cache entry removed')
  assert.deepEqual(leases(dataDir, 'refnet'), [])
  assert.ok(!ipLinks(ns).some((l) => l.ifname === 'eth0'))
  // DEL of what is gone already succeeds.
  run('del', file, 'ref1', ns)
})

test('a reference conflist with only `type` changed runs on nsdn plugins, between reference ones', (t) => {
  // nsdn-bridge with the reference host-local as its ipam (by exec), then the reference
  // tuning plugin, then nsdn-portmap: nsdn before and after reference plugins.
  const list = bridgeList('swapnet', '10.82.0.0/24', 'nsdn-t-sb', { bridge: 'nsdn-bridge' }, [
    { type: 'nsdn-portmap', capabilities: { portMappings: true } },
  ])
  const file = writeList('swapnet', list)
  const ns = netns(t)
  const caps = JSON.stringify({
    portMappings: [{ hostPort: 18080, containerPort: 8080, protocol: 'tcp' }],
  })
  const r = run('add', file, 'sw1', ns, '--capability-args', caps)!
  assert.equal(r.cniVersion, '1.0.0')
  assert.equal(hostIp(ns).length, 1)
  // The reference host-local made the lease, in its own layout.
  assert.equal(leases(dataDir, 'swapnet').length, 1)
  // tuning ran inside the container after nsdn-bridge.
  const rp = execFileSync(
    'ip',
    ['netns', 'exec', ns, 'sysctl', '-n', 'net.ipv4.conf.eth0.rp_filter'],
    { encoding: 'utf8' },
  )
  assert.equal(rp.trim(), '0')
  assert.ok(pingSoon('10.82.0.1', ns))
  // CHECK of the whole chain right after ADD, nsdn-portmap included, IPv4 only.
  run('check', file, 'sw1', ns, '--capability-args', caps)
  run('del', file, 'sw1', ns, '--capability-args', caps)
  assert.deepEqual(leases(dataDir, 'swapnet'), [])
  assert.ok(!fs.existsSync(cacheEntry('swapnet', 'sw1')))
})

test('ptp -> nsdn-routed: the same conflist shape works on both', (t) => {
  for (const type of ['ptp', 'nsdn-routed']) {
    const name = `p2p-${type}`
    const file = writeList(name, {
      cniVersion: '0.4.0',
      name,
      plugins: [
        {
          type,
          ipMasq: true,
          mtu: 1400,
          ipam: { type: 'host-local', dataDir, subnet: '10.83.0.0/24' },
        },
      ],
    })
    const ns = netns(t)
    const r = run('add', file, 'p1', ns)!
    assert.equal(r.cniVersion, '0.4.0')
    assert.equal((r.ips as { version: string }[])[0]?.version, '4', type)
    const gw = (r.ips as { gateway: string }[])[0]!.gateway
    assert.ok(pingSoon(gw, ns), `${type}: container pings its gateway ${gw}`)
    run('check', file, 'p1', ns)
    run('del', file, 'p1', ns)
    assert.deepEqual(leases(dataDir, name), [], type)
  }
})

test('the reference bridge plugin takes nsdn-ipam as its ipam', (t) => {
  const file = writeList('refipam', {
    cniVersion: '1.0.0',
    name: 'refipam',
    plugins: [
      {
        type: 'bridge',
        bridge: 'nsdn-t-ib',
        isGateway: true,
        ipam: { type: 'nsdn-ipam', dataDir, ranges: [[{ subnet: '10.84.0.0/24' }]] },
      },
    ],
  })
  const ns = netns(t)
  const r = run('add', file, 'ri1', ns)!
  assert.equal((r.ips as { address: string }[])[0]?.address, '10.84.0.2/24')
  assert.deepEqual(leases(dataDir, 'refipam'), ['10.84.0.2'])
  assert.ok(pingSoon('10.84.0.1', ns))
  run('check', file, 'ri1', ns)
  run('del', file, 'ri1', ns)
  assert.deepEqual(leases(dataDir, 'refipam'), [])
})

/** One HTTP-ish exchange over TCP: what comes back for a line sent. */
function tcpAsk(host: string, port: number, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port, timeout: 5000 }, () => s.end(line))
    let got = ''
    s.on('data', (b: Buffer) => (got += b.toString()))
    s.on('end', () => resolve(got))
    s.on('timeout', () => (s.destroy(), reject(new Error('timeout'))))
    s.on('error', reject)
  })
}

test('nsdn-portmap forwards a host port to the container, also hairpin and from localhost (snat), removed on DEL and GC', async (t) => {
  const list = {
    cniVersion: '1.1.0',
    name: 'pmnet',
    plugins: [
      {
        type: 'nsdn-bridge',
        bridge: 'nsdn-t-pm',
        isGateway: true,
        // Hairpin below: with br_netfilter the DNAT'd frame leaves by the port it came in,
        // as with the reference bridge and portmap plugins.
        hairpinMode: true,
        ipam: { type: 'nsdn-ipam', dataDir, subnet: '10.85.0.0/24' },
      },
      { type: 'nsdn-portmap', capabilities: { portMappings: true } },
    ],
  }
  const file = writeList('pmnet', list)
  const ns1 = netns(t)
  const ns2 = netns(t)
  const caps = (p: number) =>
    JSON.stringify({ portMappings: [{ hostPort: p, containerPort: 7000, protocol: 'tcp' }] })
  run('add', file, 'pm1', ns1, '--capability-args', caps(17001))
  run('add', file, 'pm2', ns2, '--capability-args', caps(17002))
  // An echo server in the container: node, listening inside ns1 through ip netns exec.
  const echo = 'require("net").createServer(s=>s.on("data",d=>s.end("echo:"+d))).listen(7000)'
  const srv = spawn('ip', ['netns', 'exec', ns1, process.execPath, '-e', echo], { stdio: 'ignore' })
  t.after(() => srv.kill())
  let answer = ''
  await eventually(() => {
    void tcpAsk('10.85.0.1', 17001, 'hi').then(
      (a) => (answer = a),
      () => undefined,
    )
    return answer !== ''
  }, 10_000)
  assert.equal(answer, 'echo:hi', 'a connection to the host port reaches the container')
  // Hairpin: the container reaches its own published port through the host's address; the
  // masquerade makes the host (10.85.0.1), not itself, the peer it answers.
  const client =
    'const s=require("net").connect(17001,"10.85.0.1",()=>s.end("hairpin"));' +
    's.setTimeout(5000,()=>s.destroy());s.on("data",d=>process.stdout.write(d))'
  const hair = spawnSync('ip', ['netns', 'exec', ns1, process.execPath, '-e', client], {
    encoding: 'utf8',
    timeout: 20_000,
  })
  assert.equal(hair.stdout, 'echo:hairpin', `hairpin: ${hair.stderr}`)
  // From the host's own 127.0.0.1 (the sandbox's lo starts down): masqueraded, and routed out
  // with route_localnet.
  execFileSync('ip', ['link', 'set', 'lo', 'up'])
  assert.equal(await tcpAsk('127.0.0.1', 17001, 'lo'), 'echo:lo', 'localhost reaches the port')
  assert.equal(
    fs.readFileSync('/proc/sys/net/ipv4/conf/nsdn-t-pm/route_localnet', 'utf8').trim(),
    '1',
  )
  const post = execFileSync('nft', ['list', 'table', 'inet', 'nsdn-portmap'], { encoding: 'utf8' })
  assert.match(post, /hook postrouting/)
  assert.match(post, /ip saddr 127\.0\.0\.1 ip daddr 10\.85\.0\.\d+ tcp dport 7000 masquerade/)
  const rules = (): string[] => {
    const out = execFileSync('nft', ['-j', 'list', 'table', 'inet', 'nsdn-portmap'], {
      encoding: 'utf8',
    })
    return (JSON.parse(out) as { nftables: { rule?: { comment: string } }[] }).nftables.flatMap(
      (i) => (i.rule ? [i.rule.comment] : []),
    )
  }
  assert.deepEqual(new Set(rules()), new Set(['nsdn:pm1/eth0', 'nsdn:pm2/eth0']))
  run('check', file, 'pm1', ns1, '--capability-args', caps(17001))
  // GC keeps pm1 only: pm2's link, lease, cache entry and rules go.
  run('gc', file, 'pm1/eth0')
  assert.deepEqual(new Set(rules()), new Set(['nsdn:pm1/eth0']))
  assert.ok(!fs.existsSync(cacheEntry('pmnet', 'pm2')))
  assert.ok(!ipLinks(ns2).some((l) => l.ifname === 'eth0'))
  assert.equal(leases(dataDir, 'pmnet').length, 1)
  run('del', file, 'pm1', ns1, '--capability-args', caps(17001))
  assert.deepEqual(rules(), [])
  assert.deepEqual(leases(dataDir, 'pmnet'), [])
  run('status', file)
})

/** Can this kernel make a device of kind? (`ip link add` of one, removed again.) */
function canMake(kind: string): boolean {
  const r = spawnSync('ip', ['link', 'add', 'nsdn-t-probe', 'type', kind], { encoding: 'utf8' })
  if (r.status !== 0) return false
  execFileSync('ip', ['link', 'del', 'nsdn-t-probe'])
  return true
}

/** `tc -j qdisc show dev DEV` kinds. */
const qdiscs = (dev: string): string[] =>
  (
    JSON.parse(execFileSync('tc', ['-j', 'qdisc', 'show', 'dev', dev], { encoding: 'utf8' })) as {
      kind: string
    }[]
  ).map((q) => q.kind)

/** A conflist: nsdn-bridge, then `middle` (reference plugins), then nsdn-portmap. */
function chainList(name: string, subnet: string, br: string, middle: Json[]): Json {
  return {
    cniVersion: '1.0.0',
    name,
    plugins: [
      {
        type: 'nsdn-bridge',
        bridge: br,
        isGateway: true,
        ipam: { type: 'nsdn-ipam', dataDir, subnet },
      },
      ...middle,
      { type: 'nsdn-portmap', capabilities: { portMappings: true } },
    ],
  }
}

const pmCaps = (port: number): string =>
  JSON.stringify({ portMappings: [{ hostPort: port, containerPort: 80, protocol: 'tcp' }] })

/** After DEL: no container interface, host veth, lease, cache entry or portmap rule of id. */
function assertChainGone(name: string, id: string, ns: string): void {
  assert.ok(!ipLinks(ns).some((l) => l.ifname === 'eth0'), 'container interface left')
  assert.ok(!ipLinks().some((l) => l.ifname === hostVethName(id, 'eth0')), 'host veth left')
  assert.deepEqual(leases(dataDir, name), [])
  assert.ok(!fs.existsSync(cacheEntry(name, id)), 'cache entry left')
  const nft = spawnSync('nft', ['-j', 'list', 'table', 'inet', 'nsdn-portmap'], {
    encoding: 'utf8',
  })
  if (nft.status === 0) assert.doesNotMatch(nft.stdout, new RegExp(`nsdn:${id}/`))
}

test('nsdn-bridge -> bandwidth -> nsdn-portmap: ingress shaping (tbf), ADD CHECK DEL leave nothing', (t) => {
  const name = 'bwinnet'
  const file = writeList(
    name,
    chainList(name, '10.87.0.0/24', 'nsdn-t-bwi', [
      { type: 'bandwidth', ingressRate: 8_000_000, ingressBurst: 800_000 },
    ]),
  )
  const ns = netns(t)
  run('add', file, 'bw1', ns, '--capability-args', pmCaps(17101))
  const host = hostVethName('bw1', 'eth0')
  // Ingress to the container is shaped on the host end of its veth.
  assert.ok(qdiscs(host).includes('tbf'), `tbf on ${host}: ${qdiscs(host).join(', ')}`)
  assert.ok(pingSoon('10.87.0.1', ns))
  run('check', file, 'bw1', ns, '--capability-args', pmCaps(17101))
  run('del', file, 'bw1', ns, '--capability-args', pmCaps(17101))
  assertChainGone(name, 'bw1', ns)
})

test('nsdn-bridge -> bandwidth -> nsdn-portmap: egress shaping through an ifb device', (t) => {
  if (!canMake('ifb')) {
    t.skip(
      'this kernel makes no ifb devices (CONFIG_IFB): the bandwidth plugin shapes egress on one; ingress-only is tested',
    )
    return
  }
  const name = 'bwegnet'
  const file = writeList(
    name,
    chainList(name, '10.88.0.0/24', 'nsdn-t-bwe', [
      {
        type: 'bandwidth',
        ingressRate: 8_000_000,
        ingressBurst: 800_000,
        egressRate: 4_000_000,
        egressBurst: 400_000,
      },
    ]),
  )
  const ns = netns(t)
  const ifbs = (): string[] =>
    ipLinks()
      .filter((l) => l.linkinfo?.info_kind === 'ifb')
      .map((l) => l.ifname)
  run('add', file, 'bw2', ns, '--capability-args', pmCaps(17102))
  const host = hostVethName('bw2', 'eth0')
  const [ifb, ...more] = ifbs()
  assert.ok(ifb && more.length === 0, `one ifb device: ${ifbs().join(', ')}`)
  assert.ok(qdiscs(ifb).includes('tbf'), `tbf on ${ifb}`)
  // The container's egress enters the host veth and is redirected to the ifb.
  assert.ok(qdiscs(host).includes('ingress'), `ingress qdisc on ${host}`)
  assert.ok(pingSoon('10.88.0.1', ns))
  run('check', file, 'bw2', ns, '--capability-args', pmCaps(17102))
  run('del', file, 'bw2', ns, '--capability-args', pmCaps(17102))
  assert.deepEqual(ifbs(), [], 'ifb device left')
  assertChainGone(name, 'bw2', ns)
})

/** Why the reference firewall plugin cannot run here (its iptables backend), or undefined. */
function iptablesMissing(): string | undefined {
  const r = spawnSync('iptables', ['-w', '-t', 'filter', '-S', 'FORWARD'], { encoding: 'utf8' })
  if (r.error) return 'no iptables program (apt-get install iptables): the firewall plugin runs it'
  if (r.status !== 0)
    return `iptables cannot list the filter table (${r.stderr.trim()}): the kernel lacks CONFIG_NF_TABLES / CONFIG_IP_NF_FILTER`
  return undefined
}

test('nsdn-bridge -> nsdn-portmap -> firewall (iptables): ADD CHECK DEL leave no rule of the container', (t) => {
  const why = iptablesMissing()
  if (why) {
    t.skip(why)
    return
  }
  const name = 'fwnet'
  const list = chainList(name, '10.89.0.0/24', 'nsdn-t-fw', [])
  ;(list.plugins as Json[]).push({ type: 'firewall', backend: 'iptables' })
  const file = writeList(name, list)
  const ns = netns(t)
  const r = run('add', file, 'fw1', ns, '--capability-args', pmCaps(17103))!
  const ip = (r.ips as { address: string }[])[0]!.address.split('/')[0]!
  const save = (): string => execFileSync('iptables-save', ['-t', 'filter'], { encoding: 'utf8' })
  assert.match(save(), new RegExp(`-A CNI-FORWARD .*${ip.replaceAll('.', '\\.')}/32`))
  assert.ok(pingSoon('10.89.0.1', ns))
  run('check', file, 'fw1', ns, '--capability-args', pmCaps(17103))
  run('del', file, 'fw1', ns, '--capability-args', pmCaps(17103))
  assert.doesNotMatch(save(), new RegExp(`${ip.replaceAll('.', '\\.')}/32`))
  assertChainGone(name, 'fw1', ns)
})

test('nsdn-portmap with snat: false masquerades nothing (DNAT only), as the reference', (t) => {
  const list = chainList('nosnat', '10.91.0.0/24', 'nsdn-t-ns', [])
  ;(list.plugins as Json[])[1] = { ...(list.plugins as Json[])[1], snat: false }
  const file = writeList('nosnat', list)
  const ns = netns(t)
  run('add', file, 'ns1', ns, '--capability-args', pmCaps(17104))
  const mine = execFileSync('nft', ['list', 'table', 'inet', 'nsdn-portmap'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.includes('"nsdn:ns1/eth0"'))
    .join('\n')
  assert.match(mine, /dnat ip to 10\.91\.0\.\d+:80/)
  assert.doesNotMatch(mine, /masquerade/)
  run('check', file, 'ns1', ns, '--capability-args', pmCaps(17104))
  run('del', file, 'ns1', ns, '--capability-args', pmCaps(17104))
  assertChainGone('nosnat', 'ns1', ns)
})

test('a failed ADD of a list is undone by DEL: nothing left, nothing cached', (t) => {
  const ns = netns(t)
  const file = writeList('failnet', {
    cniVersion: '1.0.0',
    name: 'failnet',
    plugins: [
      {
        type: 'nsdn-bridge',
        bridge: 'nsdn-t-fb',
        ipam: { type: 'nsdn-ipam', dataDir, subnet: '10.86.0.0/24' },
      },
      { type: 'no-such-plugin' },
    ],
  })
  const a = nsdn(['cni', 'add', file, 'f1', ns], ENV)
  assert.notEqual(a.status, 0)
  assert.match(a.stderr, /no-such-plugin/)
  assert.ok(!ipLinks(ns).some((l) => l.ifname === 'eth0'))
  assert.deepEqual(leases(dataDir, 'failnet'), [])
  assert.ok(!fs.existsSync(cacheEntry('failnet', 'f1')))
})

test('bad runtime input: clear errors, non-zero exit', () => {
  const missing = nsdn(['cni', 'add', '/nonexistent.conflist', 'c', 'x'], ENV)
  assert.notEqual(missing.status, 0)
  assert.match(missing.stderr, /cannot read \/nonexistent\.conflist/)
  const file = writeList('okname', { cniVersion: '1.0.0', name: 'okname', type: 'nsdn-bridge' })
  const caps = nsdn(['cni', 'add', file, 'c', 'x', '--capability-args', '{nope'], ENV)
  assert.match(caps.stderr, /--capability-args: not JSON/)
  const args = nsdn(['cni', 'add', file, 'c', 'x', '--args', 'novalue'], ENV)
  assert.match(args.stderr, /--args: "novalue" is not KEY=VALUE/)
  const chk = nsdn(['cni', 'check', file, 'never-added', 'x'], ENV)
  assert.notEqual(chk.status, 0)
  assert.match(chk.stderr, /no cached result for never-added\/eth0/)
})

after(() => {
  assert.deepEqual(netnsNames(), [])
  assert.deepEqual(
    ipLinks()
      .filter((l) => l.ifname.startsWith('veth'))
      .map((l) => l.ifname),
    [],
  )
  assert.deepEqual(fs.readdirSync(path.join(cacheDir, 'results')), [])
})
