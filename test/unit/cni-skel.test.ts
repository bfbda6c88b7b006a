/** The skel with injected environment and stdin, as skel_test.go does it. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { decodeRequest, encodeReply } from '../../src/cni/agent.js'
import { parseConfList, pluginConf } from '../../src/cni/exec.js'
import { type CniPlugin, type Invocation, parseCniArgs, runPlugin } from '../../src/cni/skel.js'

const calls: Invocation[] = []
const plugin: CniPlugin = {
  async add(inv) {
    calls.push(inv)
    return { ips: [{ address: '10.0.0.2/24', interface: 0 }], interfaces: [{ name: 'eth0' }] }
  },
  async del(inv) {
    calls.push(inv)
  },
  async check(inv) {
    calls.push(inv)
  },
  async status(inv) {
    calls.push(inv)
  },
  async gc(inv) {
    calls.push(inv)
  },
}

const env = (cmd: string | undefined, extra: Record<string, string> = {}) => ({
  ...(cmd ? { CNI_COMMAND: cmd } : {}),
  CNI_CONTAINERID: 'c1',
  CNI_NETNS: '/proc/1/ns/net',
  CNI_IFNAME: 'eth0',
  CNI_PATH: '/opt/cni/bin',
  ...extra,
})
const conf = (v: string, extra: Record<string, unknown> = {}) =>
  Buffer.from(JSON.stringify({ cniVersion: v, name: 'n1', type: 'x', ...extra }))

const errOf = (stdout: string) => JSON.parse(stdout) as { cniVersion: string; code: number }

test("ADD writes the Result in the config's version, and nothing else on stdout", async () => {
  const r = await runPlugin(
    plugin,
    env('ADD', { CNI_ARGS: 'IP=10.0.0.9;K8S_POD=x' }),
    conf('0.4.0'),
  )
  assert.equal(r.exitCode, 0)
  const j = JSON.parse(r.stdout) as { cniVersion: string; ips: { version: string }[] }
  assert.equal(j.cniVersion, '0.4.0')
  assert.equal(j.ips[0]?.version, '4')
  const inv = calls.at(-1)
  assert.equal(inv?.args.get('IP'), '10.0.0.9')
  assert.deepEqual(inv?.path, ['/opt/cni/bin'])
})

test("a missing CNI_COMMAND is error code 4 with the config's cniVersion, not a usage text", async () => {
  const r = await runPlugin(plugin, env(undefined), conf('1.0.0'))
  assert.equal(r.exitCode, 1)
  assert.deepEqual(
    { ...errOf(r.stdout), msg: undefined, details: undefined },
    { cniVersion: '1.0.0', code: 4, msg: undefined, details: undefined },
  )
})

test('environment and config errors carry the spec codes', async () => {
  const cases: [string, Record<string, string>, Buffer, number][] = [
    ['unknown verb', env('FROB'), conf('1.0.0'), 4],
    ['ADD without CNI_NETNS', { ...env('ADD'), CNI_NETNS: '' }, conf('1.0.0'), 4],
    ['DEL without CNI_IFNAME', { ...env('DEL'), CNI_IFNAME: '' }, conf('1.0.0'), 4],
    ['bad container id', env('ADD', { CNI_CONTAINERID: 'a/b' }), conf('1.0.0'), 4],
    ['bad ifname', env('ADD', { CNI_IFNAME: 'x'.repeat(16) }), conf('1.0.0'), 4],
    ['bad CNI_ARGS', env('ADD', { CNI_ARGS: 'novalue' }), conf('1.0.0'), 4],
    ['stdin not JSON', env('ADD'), Buffer.from('{nope'), 6],
    ['no stdin', env('ADD'), Buffer.alloc(0), 6],
    ['unsupported version', env('ADD'), conf('0.2.0'), 1],
    ['no version', env('ADD'), Buffer.from('{"name":"n1","type":"x"}'), 1],
    ['CHECK before 0.4.0', env('CHECK'), conf('0.3.1'), 1],
    ['STATUS before 1.1.0', env('STATUS'), conf('1.0.0'), 1],
    ['GC before 1.1.0', env('GC'), conf('1.0.0'), 1],
    ['bad network name', env('ADD'), conf('1.0.0', { name: 'a b' }), 7],
  ]
  for (const [what, e, stdin, code] of cases) {
    const r = await runPlugin(plugin, e, stdin)
    assert.equal(r.exitCode, 1, what)
    const j = errOf(r.stdout)
    assert.equal(j.code, code, `${what}: ${r.stdout}`)
    assert.equal(typeof j.cniVersion, 'string', what)
  }
})

test('DEL needs no netns; STATUS and GC need no container; VERSION needs no config', async () => {
  assert.equal(
    (await runPlugin(plugin, { ...env('DEL'), CNI_NETNS: '' }, conf('1.0.0'))).exitCode,
    0,
  )
  const st = await runPlugin(plugin, { CNI_COMMAND: 'STATUS', CNI_PATH: '/x' }, conf('1.1.0'))
  assert.deepEqual(st, { stdout: '', exitCode: 0 })
  const gc = await runPlugin(plugin, { CNI_COMMAND: 'GC', CNI_PATH: '/x' }, conf('1.1.0'))
  assert.equal(gc.exitCode, 0)
  const v = await runPlugin(plugin, { CNI_COMMAND: 'VERSION' }, Buffer.alloc(0))
  assert.deepEqual(JSON.parse(v.stdout), {
    cniVersion: '1.1.0',
    supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'],
  })
})

test("a plugin's failure is error JSON with its code; anything unexpected is 999", async () => {
  const bad: CniPlugin = {
    ...plugin,
    async add() {
      throw new TypeError('boom')
    },
  }
  const r = await runPlugin(bad, env('ADD'), conf('1.1.0'))
  assert.equal(r.exitCode, 1)
  assert.deepEqual(JSON.parse(r.stdout), { cniVersion: '1.1.0', code: 999, msg: 'boom' })
})

test('prevResult of any version reaches the plugin in the 1.x shape', async () => {
  const prev = { cniVersion: '0.4.0', ips: [{ version: '4', address: '10.0.0.2/24' }] }
  await runPlugin(plugin, env('CHECK'), conf('0.4.0', { prevResult: prev }))
  assert.deepEqual(calls.at(-1)?.prevResult?.ips, [{ address: '10.0.0.2/24' }])
})

test('CNI_ARGS: K=V pairs; values may hold "="', () => {
  assert.deepEqual(
    [...parseCniArgs('A=1;B=x=y;;')],
    [
      ['A', '1'],
      ['B', 'x=y'],
    ],
  )
})

test('the agent wire format round-trips', () => {
  const envBlock = Buffer.from('CNI_COMMAND=ADD\0NSDN_PLUGIN=nsdn-bridge\0')
  const len = Buffer.alloc(4)
  len.writeUInt32LE(envBlock.length)
  const req = decodeRequest(Buffer.concat([len, envBlock, Buffer.from('{"a":1}')]))
  assert.deepEqual(req.env, { CNI_COMMAND: 'ADD', NSDN_PLUGIN: 'nsdn-bridge' })
  assert.equal(req.stdin.toString(), '{"a":1}')
  const rep = encodeReply(1, 'out', 'err')
  assert.equal(rep[0], 1)
  assert.equal(rep.readUInt32LE(1), 3)
  assert.equal(rep.subarray(5).toString(), 'outerr')
  assert.throws(() => decodeRequest(Buffer.from([9, 0, 0, 0])), { code: 'E_DECODE' })
})

test('the runtime injects name, cniVersion, runtimeConfig from capabilities, prevResult', () => {
  const list = parseConfList(
    Buffer.from(
      JSON.stringify({
        cniVersion: '0.4.0',
        name: 'lab',
        plugins: [
          { type: 'bridge' },
          { type: 'portmap', capabilities: { portMappings: true, bandwidth: false } },
        ],
      }),
    ),
  )
  const rt = {
    containerId: 'c1',
    netns: '/run/netns/c1',
    ifname: 'eth0',
    args: [],
    path: [],
    cacheDir: '/x',
    capabilityArgs: { portMappings: [{ hostPort: 8080, containerPort: 80 }], bandwidth: {} },
  }
  const c = pluginConf(list, list.plugins[1]!, rt, { ips: [{ address: '10.0.0.2/24' }] })
  assert.deepEqual(c, {
    type: 'portmap',
    name: 'lab',
    cniVersion: '0.4.0',
    runtimeConfig: { portMappings: [{ hostPort: 8080, containerPort: 80 }] },
    prevResult: { cniVersion: '0.4.0', ips: [{ version: '4', address: '10.0.0.2/24' }] },
  })
  // A single config is a list of one.
  const one = parseConfList(Buffer.from('{"cniVersion":"1.0.0","name":"n","type":"bridge"}'))
  assert.equal(one.plugins.length, 1)
  assert.throws(
    () => parseConfList(Buffer.from('{"cniVersion":"1.0.0","name":"n","plugins":[]}')),
    {
      code: 'E_CONFIG',
    },
  )
  assert.throws(() => parseConfList(Buffer.from('{"cniVersion":"0.1.0","name":"n","type":"b"}')), {
    code: 'E_CNI_VERSION',
  })
})
