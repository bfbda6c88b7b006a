/** Config field errors: a missing field says so; a wrong one says what it is instead. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { listAt, objectAt, optStringListAt, stringAt } from '../../src/ipam/fields.js'
import { parseIpamConf } from '../../src/ipam/index.js'
import { getDriver } from '../../src/drivers/registry.js'

const cases: [fn: () => unknown, message: string, hint: string][] = [
  [() => stringAt(undefined, 'conf.name'), 'conf.name: is missing', 'add "name", a string'],
  [() => objectAt(undefined, 'conf.ipam'), 'conf.ipam: is missing', 'add "ipam", an object'],
  [() => listAt(undefined, 'ipam.ranges'), 'ipam.ranges: is missing', 'add "ranges", a list'],
  [
    () => stringAt(5, 'conf.name'),
    'conf.name: must be a string, got a number',
    'write a JSON string',
  ],
  [() => stringAt(null, 'x.y'), 'x.y: must be a string, got null', 'write a JSON string'],
  [() => stringAt([], 'x.y'), 'x.y: must be a string, got a list', 'write a JSON string'],
  [
    () => objectAt('s', 'conf'),
    'conf: must be an object, got a string',
    'write a JSON object, {...}',
  ],
  [() => listAt({}, 'a.b'), 'a.b: must be a list, got an object', 'write a JSON list, [...]'],
  [() => stringAt('', 'a.b'), 'a.b: must not be empty', 'write a JSON string'],
  [
    () => optStringListAt({ l: ['x', 3] }, 'l', 'conf'),
    'conf.l[1]: must be a string, got a number',
    'write a JSON string',
  ],
]

for (const [fn, message, hint] of cases)
  test(`config field error: ${message}`, () => {
    assert.throws(fn, { code: 'E_CONFIG', message, hint })
  })

test('a driver config and an IPAM section without a required field: "is missing"', () => {
  for (const name of ['bridge', 'ovs', 'vlan', 'routed'])
    assert.throws(() => getDriver(name).parseConf({ type: name }, 'conf'), {
      message: 'conf.name: is missing',
    })
  assert.throws(() => parseIpamConf({ type: 'host-local', ranges: [[{}]] }, 'ipam'), {
    message: 'ipam.ranges[0][0].subnet: is missing',
  })
  assert.throws(() => parseIpamConf({}, 'ipam'), { message: /^ipam\.type: is missing/ })
})

test('no config message says "a undefined"', () => {
  for (const fn of [
    () => stringAt(undefined, 'w'),
    () => objectAt(undefined, 'w'),
    () => listAt(undefined, 'w'),
  ])
    assert.throws(fn, (e: Error) => !/undefined/.test(e.message))
})
