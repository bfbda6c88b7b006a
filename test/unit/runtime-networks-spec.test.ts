/**
 * A container spec's CNI networks: a conflist file read (and checked) at parse time and kept as
 * JSON in the spec, a conflist given inline, and the refusals (both kinds at once, an unreadable
 * file, a conflist nsdn's CNI side would refuse).
 */
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, test } from 'node:test'
import { ConfigError } from '../../src/errors.js'
import { parseSpec, toRaw } from '../../src/runtime/spec.js'

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsdn-netspec-'))
after(() => fs.rmSync(dir, { recursive: true, force: true }))
const LIST = {
  cniVersion: '1.0.0',
  name: 'lab',
  plugins: [
    { type: 'bridge', bridge: 'br-lab', ipam: { type: 'host-local', subnet: '10.1.0.0/24' } },
  ],
}
const file = path.join(dir, 'lab.conflist')
fs.writeFileSync(file, JSON.stringify(LIST))
const base = { name: 'c1', image: 'bb', command: ['true'] }

test('a conflist file is read into the spec; ifnames count on from eth0', () => {
  const s = parseSpec({
    ...base,
    networks: [
      { driver: 'bridge', conf: { name: 'x' } },
      { conflist: file, mac: '02:00:00:00:00:01' },
    ],
  })
  assert.deepEqual(s.networks[1], {
    cni: LIST,
    conflist: file,
    ifname: 'eth1',
    mac: '02:00:00:00:00:01',
  })
  // the spec round-trips without the file: the JSON is in it
  fs.renameSync(file, `${file}.gone`)
  try {
    assert.deepEqual(parseSpec(toRaw(s)), s)
  } finally {
    fs.renameSync(`${file}.gone`, file)
  }
})

test('a conflist given inline as "cni"', () => {
  const s = parseSpec({ ...base, networks: [{ cni: LIST, ifname: 'net0' }] })
  assert.deepEqual(s.networks[0], { cni: LIST, ifname: 'net0' })
})

const refused = (networks: unknown[], re: RegExp): void => {
  assert.throws(
    () => parseSpec({ ...base, networks }),
    (e: unknown) => e instanceof ConfigError && re.test(e.message),
  )
}

test('refusals name the network and say what is wrong', () => {
  refused([{ driver: 'bridge', conflist: file }], /networks\[0\]: give either "driver" or a CNI/)
  refused([{}], /networks\[0\]: give either/)
  refused([{ conflist: '/nonexistent/x.conflist' }], /networks\[0\]\.conflist: cannot read/)
  refused(
    [{ cni: { ...LIST, plugins: [{ bridge: 'x' }] } }],
    /networks\[0\]\.cni: plugins\[0\]\.type: each plugin needs a "type"/,
  )
  refused([{ cni: { ...LIST, name: 'bad name' } }], /invalid network name "bad name"/)
})
