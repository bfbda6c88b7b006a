/** Error codes: errno mapping, the exit/CNI table, the error classes, ignoreNotFound. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  ConfigError,
  ERROR_TABLE,
  type ErrorCode,
  ExecError,
  KernelError,
  KernelFeatureError,
  NsdnError,
  codeForErrno,
  errorMessage,
  ignoreNotFound,
  isCode,
} from '../../src/errors.js'

const errnoCases: [errno: string, code: ErrorCode][] = [
  ['EEXIST', 'E_EXISTS'],
  ['ENODEV', 'E_NOT_FOUND'],
  ['ENOENT', 'E_NOT_FOUND'],
  ['ESRCH', 'E_NOT_FOUND'],
  ['EADDRNOTAVAIL', 'E_NOT_FOUND'],
  ['EPERM', 'E_PERM'],
  ['EACCES', 'E_PERM'],
  ['EBUSY', 'E_TRY_AGAIN'],
  ['EAGAIN', 'E_TRY_AGAIN'],
  ['EINTR', 'E_TRY_AGAIN'],
  ['EINVAL', 'E_KERNEL'],
  ['EOPNOTSUPP', 'E_KERNEL'],
  ['ENOTCONN', 'E_KERNEL'],
  ['ERANGE', 'E_KERNEL'],
  ['ENETUNREACH', 'E_KERNEL'],
  ['', 'E_KERNEL'],
  ['eexist', 'E_KERNEL'],
]

for (const [errno, code] of errnoCases)
  test(`codeForErrno(${JSON.stringify(errno)}) is ${code}`, () => {
    assert.equal(codeForErrno(errno), code)
    assert.ok(code in ERROR_TABLE)
  })

/** CNI SPEC error codes below 100 (libcni pkg/types adds 8, invalid netns, and 999, internal). */
const CNI_WELL_KNOWN = new Set([1, 2, 3, 4, 5, 6, 7, 8, 11, 50, 51])
/** sysexits.h: EX_USAGE (64) .. EX_CONFIG (78). */
const isSysexit = (n: number): boolean => n >= 64 && n <= 78

for (const [code, entry] of Object.entries(ERROR_TABLE))
  test(`ERROR_TABLE ${code} has a CNI code and an exit status`, () => {
    assert.match(code, /^E_[A-Z_]+$/)
    assert.ok(Number.isInteger(entry.cni), 'cni is an integer')
    assert.ok(
      CNI_WELL_KNOWN.has(entry.cni) || entry.cni >= 100,
      `cni ${entry.cni}: a SPEC code or 100+ (plugin-specific)`,
    )
    assert.ok(Number.isInteger(entry.exit), 'exit is an integer')
    assert.ok(entry.exit === 1 || isSysexit(entry.exit), `exit ${entry.exit}: 1 or a sysexits code`)
  })

/**
 * Every row, written out: exit statuses are what scripts test and CNI codes what runtimes read,
 * so a change to the table must change this test too. A new code gets its row here.
 */
const PINNED: Record<ErrorCode, { cni: number; exit: number }> = {
  E_CONFIG: { cni: 7, exit: 78 },
  E_UNSUPPORTED_FIELD: { cni: 2, exit: 78 },
  E_CNI_VERSION: { cni: 1, exit: 78 },
  E_CNI_ENV: { cni: 4, exit: 64 },
  E_USAGE: { cni: 4, exit: 64 },
  E_UNKNOWN_CONTAINER: { cni: 3, exit: 1 },
  E_IO: { cni: 5, exit: 74 },
  E_DECODE: { cni: 6, exit: 65 },
  E_NETNS: { cni: 8, exit: 66 },
  E_TRY_AGAIN: { cni: 11, exit: 75 },
  E_UNAVAILABLE: { cni: 50, exit: 69 },
  E_KERNEL_FEATURE: { cni: 50, exit: 69 },
  E_KERNEL: { cni: 100, exit: 71 },
  E_NOT_FOUND: { cni: 101, exit: 1 },
  E_EXISTS: { cni: 102, exit: 1 },
  E_PERM: { cni: 103, exit: 77 },
  E_EXEC: { cni: 104, exit: 1 },
  E_IPAM_EXHAUSTED: { cni: 110, exit: 1 },
  E_INTERNAL: { cni: 999, exit: 70 },
}

for (const [code, { cni, exit }] of Object.entries(PINNED))
  test(`ERROR_TABLE ${code} stays cni ${cni}, exit ${exit} (scripts and runtimes rely on these)`, () => {
    assert.deepEqual(ERROR_TABLE[code as ErrorCode], { cni, exit })
  })

test('ERROR_TABLE has exactly the pinned codes', () => {
  assert.deepEqual(Object.keys(ERROR_TABLE).sort(), Object.keys(PINNED).sort())
})

test('plugin-specific CNI codes are unique, so a runtime can tell them apart', () => {
  const specific = Object.values(ERROR_TABLE)
    .map((e) => e.cni)
    .filter((c) => c >= 100)
  assert.equal(new Set(specific).size, specific.length)
})

test('ConfigError: code E_CONFIG, where leads the message, hint kept, name set', () => {
  const e = new ConfigError('bad vid', 'links[2].vid', { hint: 'use 1-4094' })
  assert.equal(e.code, 'E_CONFIG')
  assert.equal(e.message, 'links[2].vid: bad vid')
  assert.equal(e.where, 'links[2].vid')
  assert.equal(e.hint, 'use 1-4094')
  assert.equal(e.name, 'ConfigError')
  assert.ok(e instanceof NsdnError && e instanceof Error)
  assert.equal(new ConfigError('no where').message, 'no where')
})

test('NsdnError keeps cause and details', () => {
  const cause = new Error('inner')
  const e = new NsdnError('E_INTERNAL', 'outer', { cause, details: 'more' })
  assert.equal(e.cause, cause)
  assert.equal(e.details, 'more')
  assert.equal(e.hint, undefined)
  assert.equal('cause' in new NsdnError('E_INTERNAL', 'x'), false, 'no cause key when none')
})

test('KernelError carries errno and the ip equivalent', () => {
  const e = new KernelError('E_EXISTS', 'exists', 'EEXIST', 'ip link add br0 type bridge')
  assert.equal(e.code, 'E_EXISTS')
  assert.equal(e.errno, 'EEXIST')
  assert.equal(e.command, 'ip link add br0 type bridge')
  assert.equal(e.name, 'KernelError')
})

test('ExecError is E_EXEC unless told otherwise', () => {
  const e = new ExecError('ovs-vsctl failed', ['ovs-vsctl', 'add-br', 'x'], 1, 'boom')
  assert.equal(e.code, 'E_EXEC')
  assert.deepEqual([e.argv, e.exitCode, e.stderr], [['ovs-vsctl', 'add-br', 'x'], 1, 'boom'])
  const down = new ExecError('down', ['x'], null, '', { code: 'E_UNAVAILABLE' })
  assert.equal(down.code, 'E_UNAVAILABLE')
})

test('KernelFeatureError names the feature and option, and hints the alternative', () => {
  const e = new KernelFeatureError('802.1Q VLAN devices', 'CONFIG_VLAN_8021Q', 'use ovs')
  assert.equal(e.code, 'E_KERNEL_FEATURE')
  assert.equal(e.message, 'this kernel lacks 802.1Q VLAN devices (CONFIG_VLAN_8021Q)')
  assert.equal(e.hint, 'use ovs')
  assert.equal(e.feature, '802.1Q VLAN devices')
  assert.equal(e.kconfig, 'CONFIG_VLAN_8021Q')
})

test('isCode matches NsdnErrors only', () => {
  assert.ok(isCode(new NsdnError('E_NOT_FOUND', 'x'), 'E_NOT_FOUND'))
  assert.ok(!isCode(new NsdnError('E_EXISTS', 'x'), 'E_NOT_FOUND'))
  const lookalike = Object.assign(new Error('x'), { code: 'E_NOT_FOUND' })
  assert.ok(!isCode(lookalike, 'E_NOT_FOUND'))
  assert.ok(!isCode(undefined, 'E_NOT_FOUND'))
})

const gone = new NsdnError('E_NOT_FOUND', 'gone')
const kernelGone = new KernelError('E_NOT_FOUND', 'no such device', 'ENODEV', 'ip link del x')
const exists = new NsdnError('E_EXISTS', 'exists')
const plain = new Error('plain')

interface IgnoreCase {
  name: string
  p: () => Promise<unknown>
  result?: unknown
  throws?: unknown
}

const ignoreCases: IgnoreCase[] = [
  { name: 'a value passes through', p: async () => 5, result: 5 },
  { name: 'undefined passes through', p: async () => undefined, result: undefined },
  { name: 'E_NOT_FOUND becomes undefined', p: () => Promise.reject(gone), result: undefined },
  {
    name: 'a KernelError E_NOT_FOUND becomes undefined',
    p: () => Promise.reject(kernelGone),
    result: undefined,
  },
  { name: 'E_EXISTS is thrown again', p: () => Promise.reject(exists), throws: exists },
  { name: 'a plain Error is thrown again', p: () => Promise.reject(plain), throws: plain },
  { name: 'a thrown string is thrown again', p: () => Promise.reject('str'), throws: 'str' },
]

for (const tc of ignoreCases)
  test(`ignoreNotFound: ${tc.name}`, async () => {
    if ('throws' in tc) {
      await assert.rejects(ignoreNotFound(tc.p()), (err: unknown) => err === tc.throws)
      return
    }
    assert.equal(await ignoreNotFound(tc.p()), tc.result)
  })

test('errorMessage reads Errors and anything else', () => {
  assert.equal(errorMessage(new Error('m')), 'm')
  assert.equal(errorMessage('s'), 's')
  assert.equal(errorMessage(42), '42')
})
