import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  parseAddr,
  parseAddrList,
  parseLinkAdd,
  parseLinkDel,
  parseLinkSet,
  parseRoute,
} from '../../src/cli/args.js'
import { NsdnError } from '../../src/errors.js'

const w = (s: string): string[] => (s ? s.split(' ') : [])

const okCases: Array<[string, () => unknown, unknown]> = [
  [
    'link add bridge',
    () => parseLinkAdd(w('br0 type bridge')),
    { name: 'br0', up: false, type: 'bridge' },
  ],
  [
    'link add bridge: master and up before type, name keyword',
    () => parseLinkAdd(w('name br1 master br0 up type bridge')),
    { name: 'br1', master: 'br0', up: true, type: 'bridge' },
  ],
  [
    'link add veth: peer NAME',
    () => parseLinkAdd(w('v0 type veth peer v1')),
    { name: 'v0', up: false, type: 'veth', peer: 'v1' },
  ],
  [
    'link add veth: ip spelling peer name NAME netns NS',
    () => parseLinkAdd(w('v0 up master br0 type veth peer name eth0 netns h1')),
    { name: 'v0', up: true, master: 'br0', type: 'veth', peer: 'eth0', peerNs: 'h1' },
  ],
  [
    'link add macvlan: mode defaults to bridge',
    () => parseLinkAdd(w('mv0 type macvlan link eth0')),
    { name: 'mv0', up: false, type: 'macvlan', parent: 'eth0', mode: 'bridge' },
  ],
  [
    'link add macvlan: ip order, link before type',
    () => parseLinkAdd(w('mv0 link eth0 type macvlan mode vepa')),
    { name: 'mv0', up: false, type: 'macvlan', parent: 'eth0', mode: 'vepa' },
  ],
  [
    'link add vxlan: every option',
    () =>
      parseLinkAdd(
        w('vx0 type vxlan id 42 remote 192.0.2.2 local 192.0.2.1 dev eth0 dstport 4789'),
      ),
    {
      name: 'vx0',
      up: false,
      type: 'vxlan',
      vxlan: { id: 42, remote: '192.0.2.2', local: '192.0.2.1', dev: 'eth0', dstport: 4789 },
    },
  ],
  [
    'link add vxlan: multicast group, vni spelling',
    () => parseLinkAdd(w('vx1 type vxlan vni 16777215 group 239.1.1.1')),
    { name: 'vx1', up: false, type: 'vxlan', vxlan: { id: 16777215, group: '239.1.1.1' } },
  ],
  [
    'link add vlan',
    () => parseLinkAdd(w('eth0.100 type vlan link eth0 id 100')),
    { name: 'eth0.100', up: false, type: 'vlan', parent: 'eth0', id: 100 },
  ],
  [
    'link add vlan: ip order',
    () => parseLinkAdd(w('link eth0 name eth0.7 type vlan id 7')),
    { name: 'eth0.7', up: false, type: 'vlan', parent: 'eth0', id: 7 },
  ],
  [
    'link set: several changes at once',
    () => parseLinkSet(w('v0 up master br0 mtu 1400 address 02:AA:00:00:00:01 netns h1 name eth0')),
    {
      name: 'v0',
      up: true,
      master: 'br0',
      mtu: 1400,
      address: '02:aa:00:00:00:01',
      netns: 'h1',
      newName: 'eth0',
    },
  ],
  ['link set: dev keyword, down', () => parseLinkSet(w('dev v0 down')), { name: 'v0', up: false }],
  ['link set: nomaster', () => parseLinkSet(w('v0 nomaster')), { name: 'v0', master: null }],
  ['link del NAME', () => parseLinkDel(w('v0')), 'v0'],
  ['link del dev NAME', () => parseLinkDel(w('dev v0')), 'v0'],
  [
    'addr add',
    () => parseAddr('add', w('10.0.0.1/24 dev eth0')),
    { cidr: { address: '10.0.0.1', prefixLen: 24, family: 4 }, dev: 'eth0', nodad: false },
  ],
  [
    'addr add: dev first, IPv6, nodad',
    () => parseAddr('add', w('dev eth0 fd00::2/64 nodad')),
    { cidr: { address: 'fd00::2', prefixLen: 64, family: 6 }, dev: 'eth0', nodad: true },
  ],
  [
    'addr del: local keyword',
    () => parseAddr('del', w('local 10.0.0.1/24 dev eth0')),
    { cidr: { address: '10.0.0.1', prefixLen: 24, family: 4 }, dev: 'eth0', nodad: false },
  ],
  ['addr list', () => parseAddrList([]), {}],
  ['addr list dev NAME', () => parseAddrList(w('dev eth0')), { dev: 'eth0' }],
  [
    'route add default via',
    () => parseRoute('add', w('default via 10.0.0.1')),
    { dst: 'default', family: 4, via: '10.0.0.1' },
  ],
  [
    'route add: every option',
    () =>
      parseRoute(
        'add',
        w('10.1.0.0/16 via 10.0.0.2 dev br0 src 10.0.0.1 metric 100 table 200 scope link'),
      ),
    {
      dst: '10.1.0.0/16',
      family: 4,
      via: '10.0.0.2',
      dev: 'br0',
      src: '10.0.0.1',
      metric: 100,
      table: 200,
      scope: 'link',
    },
  ],
  [
    'route add: IPv6 default from the gateway',
    () => parseRoute('add', w('default via fd00::1')),
    { dst: 'default', family: 6, via: 'fd00::1' },
  ],
  [
    'route add -6 default dev',
    () => parseRoute('add', w('default dev eth0'), true),
    { dst: 'default', family: 6, dev: 'eth0' },
  ],
  [
    'route add: to keyword, table main',
    () => parseRoute('add', w('to 10.2.0.0/24 dev eth0 table main')),
    { dst: '10.2.0.0/24', family: 4, dev: 'eth0', table: 254 },
  ],
  [
    'route del: the prefix alone',
    () => parseRoute('del', w('10.2.0.0/24')),
    { dst: '10.2.0.0/24', family: 4 },
  ],
]

for (const [name, run, want] of okCases) test(`parses ${name}`, () => assert.deepEqual(run(), want))

/** [name, parse, code, text the message must contain] */
const errorCases: Array<[string, () => unknown, string, string]> = [
  // link add: names
  [
    'name over 15 bytes',
    () => parseLinkAdd(w('abcdefghijklmnop type bridge')),
    'E_CONFIG',
    'link add NAME: interface name "abcdefghijklmnop" is longer than 15',
  ],
  [
    'name over 15 bytes in UTF-8',
    () => parseLinkAdd(w('ééééééééé type bridge')),
    'E_CONFIG',
    'longer than 15 bytes',
  ],
  [
    'name with /',
    () => parseLinkAdd(w('a/b type bridge')),
    'E_CONFIG',
    'link add NAME: invalid interface name "a/b"',
  ],
  [
    'name with a space',
    () => parseLinkAdd(['a b', 'type', 'bridge']),
    'E_CONFIG',
    'invalid interface name "a b"',
  ],
  [
    'name with ..',
    () => parseLinkAdd(w('a..b type bridge')),
    'E_CONFIG',
    'invalid interface name "a..b"',
  ],
  ['name ..', () => parseLinkAdd(w('.. type bridge')), 'E_CONFIG', 'invalid interface name ".."'],
  ['empty name', () => parseLinkAdd(['', 'type', 'bridge']), 'E_CONFIG', 'interface name is empty'],
  [
    'name given twice',
    () => parseLinkAdd(w('a name b type bridge')),
    'E_USAGE',
    'link add name: the name is given twice',
  ],
  [
    'no name',
    () => parseLinkAdd(w('type bridge')),
    'E_USAGE',
    'link add NAME: no interface name given',
  ],
  ['no type', () => parseLinkAdd(w('br0')), 'E_USAGE', 'link add type: no link type given'],
  ['type without value', () => parseLinkAdd(w('br0 type')), 'E_USAGE', '"type" needs a link type'],
  [
    'unknown link type',
    () => parseLinkAdd(w('x type dummy')),
    'E_CONFIG',
    'unknown link type "dummy" (known: bridge, veth, macvlan, vxlan, vlan)',
  ],
  [
    'unknown word before type',
    () => parseLinkAdd(w('br0 mtu 1400 type bridge')),
    'E_USAGE',
    'unexpected word "mtu"',
  ],
  ['up twice', () => parseLinkAdd(w('br0 up up type bridge')), 'E_USAGE', '"up" is given twice'],
  [
    'bad master name',
    () => parseLinkAdd(w('v0 master a/b type bridge')),
    'E_CONFIG',
    'link add master: invalid interface name',
  ],
  [
    'master without value',
    () => parseLinkAdd(w('v0 master')),
    'E_USAGE',
    '"master" needs a bridge name',
  ],
  [
    'words after bridge',
    () => parseLinkAdd(w('br0 type bridge stp')),
    'E_USAGE',
    'unexpected word "stp"',
  ],
  [
    'link PARENT on a bridge',
    () => parseLinkAdd(w('br0 link eth0 type bridge')),
    'E_USAGE',
    '"link PARENT" applies to macvlan and vlan',
  ],
  // veth
  [
    'veth without peer',
    () => parseLinkAdd(w('v0 type veth')),
    'E_USAGE',
    'a veth needs "peer NAME"',
  ],
  [
    'veth peer without name',
    () => parseLinkAdd(w('v0 type veth peer')),
    'E_USAGE',
    '"peer" needs a peer name',
  ],
  [
    'veth bad peer name',
    () => parseLinkAdd(w('v0 type veth peer a/b')),
    'E_CONFIG',
    'link add peer: invalid interface name "a/b"',
  ],
  [
    'veth long peer name',
    () => parseLinkAdd(w('v0 type veth peer name abcdefghijklmnop')),
    'E_CONFIG',
    'longer than 15 bytes',
  ],
  [
    'veth netns ../x',
    () => parseLinkAdd(w('v0 type veth peer v1 netns ../x')),
    'E_CONFIG',
    'link add netns: invalid netns name "../x"',
  ],
  [
    'veth netns before peer',
    () => parseLinkAdd(w('v0 type veth netns h1 peer v1')),
    'E_USAGE',
    'unexpected word "netns"',
  ],
  // macvlan
  [
    'macvlan without link',
    () => parseLinkAdd(w('mv0 type macvlan')),
    'E_USAGE',
    'a macvlan needs "link PARENT"',
  ],
  [
    'macvlan bad mode',
    () => parseLinkAdd(w('mv0 type macvlan link eth0 mode source')),
    'E_CONFIG',
    'unknown macvlan mode "source"',
  ],
  [
    'macvlan link twice',
    () => parseLinkAdd(w('mv0 link eth0 type macvlan link eth1')),
    'E_USAGE',
    'unexpected word "link"',
  ],
  // vxlan
  [
    'vxlan without id',
    () => parseLinkAdd(w('vx0 type vxlan remote 192.0.2.2')),
    'E_USAGE',
    'a vxlan needs "id VNI"',
  ],
  [
    'vxlan id too big',
    () => parseLinkAdd(w('vx0 type vxlan id 16777216')),
    'E_CONFIG',
    'link add id: must be a whole number from 0 to 16777215',
  ],
  [
    'vxlan id not a number',
    () => parseLinkAdd(w('vx0 type vxlan id 0x10')),
    'E_CONFIG',
    'got "0x10"',
  ],
  [
    'vxlan id twice',
    () => parseLinkAdd(w('vx0 type vxlan id 1 vni 2')),
    'E_USAGE',
    'the VNI is given twice',
  ],
  [
    'vxlan bad remote',
    () => parseLinkAdd(w('vx0 type vxlan id 1 remote 300.1.1.1')),
    'E_CONFIG',
    'link add remote: invalid IP address "300.1.1.1"',
  ],
  [
    'vxlan remote and group',
    () => parseLinkAdd(w('vx0 type vxlan id 1 remote 192.0.2.2 group 239.1.1.1')),
    'E_USAGE',
    '"remote" and "group" exclude each other',
  ],
  [
    'vxlan bad dstport',
    () => parseLinkAdd(w('vx0 type vxlan id 1 dstport 65536')),
    'E_CONFIG',
    'link add dstport: must be a whole number from 0 to 65535',
  ],
  [
    'vxlan bad dev',
    () => parseLinkAdd(w('vx0 type vxlan id 1 dev a/b')),
    'E_CONFIG',
    'link add dev: invalid interface name',
  ],
  // vlan
  [
    'vlan without link',
    () => parseLinkAdd(w('v.1 type vlan id 1')),
    'E_USAGE',
    'a vlan needs "link PARENT"',
  ],
  [
    'vlan without id',
    () => parseLinkAdd(w('v.1 type vlan link eth0')),
    'E_USAGE',
    'a vlan needs "id VID"',
  ],
  [
    'vlan id 4095',
    () => parseLinkAdd(w('v.1 type vlan link eth0 id 4095')),
    'E_CONFIG',
    'from 0 to 4094, got "4095"',
  ],
  [
    'vlan id negative',
    () => parseLinkAdd(w('v.1 type vlan link eth0 id -1')),
    'E_CONFIG',
    'got "-1"',
  ],
  // link set
  [
    'link set nothing to change',
    () => parseLinkSet(w('v0')),
    'E_USAGE',
    'link set NAME: nothing to change on "v0"',
  ],
  ['link set no name', () => parseLinkSet([]), 'E_USAGE', 'link set NAME: no interface name given'],
  [
    'link set dev without name',
    () => parseLinkSet(w('dev')),
    'E_USAGE',
    '"dev" needs an interface name',
  ],
  [
    'link set bad name',
    () => parseLinkSet(w('a/b up')),
    'E_CONFIG',
    'link set NAME: invalid interface name',
  ],
  [
    'link set up and down',
    () => parseLinkSet(w('v0 up down')),
    'E_USAGE',
    'say "up" or "down" once',
  ],
  [
    'link set master and nomaster',
    () => parseLinkSet(w('v0 master br0 nomaster')),
    'E_USAGE',
    'say "master BR" or "nomaster" once',
  ],
  [
    'link set mtu too small',
    () => parseLinkSet(w('v0 mtu 67')),
    'E_CONFIG',
    'link set mtu: must be a whole number from 68 to 65535',
  ],
  ['link set mtu not a number', () => parseLinkSet(w('v0 mtu big')), 'E_CONFIG', 'got "big"'],
  [
    'link set mtu twice',
    () => parseLinkSet(w('v0 mtu 1400 mtu 1500')),
    'E_USAGE',
    '"mtu" is given twice',
  ],
  [
    'link set bad MAC',
    () => parseLinkSet(w('v0 address 02:00:00:00:00')),
    'E_CONFIG',
    'link set address: invalid MAC address "02:00:00:00:00"',
  ],
  [
    'link set bad MAC digits',
    () => parseLinkSet(w('v0 address zz:00:00:00:00:01')),
    'E_CONFIG',
    'invalid MAC address',
  ],
  [
    'link set netns ../x',
    () => parseLinkSet(w('v0 netns ../x')),
    'E_CONFIG',
    'link set netns: invalid netns name "../x"',
  ],
  [
    'link set bad new name',
    () => parseLinkSet(w('v0 name abcdefghijklmnop')),
    'E_CONFIG',
    'link set name: interface name',
  ],
  [
    'link set unknown word',
    () => parseLinkSet(w('v0 promisc on')),
    'E_USAGE',
    'unexpected word "promisc"',
  ],
  // link del
  ['link del nothing', () => parseLinkDel([]), 'E_USAGE', 'no interface name given'],
  [
    'link del two names',
    () => parseLinkDel(w('a b')),
    'E_USAGE',
    'link del b: unexpected word "b"',
  ],
  [
    'link del bad name',
    () => parseLinkDel(w('a/b')),
    'E_CONFIG',
    'link del NAME: invalid interface name',
  ],
  // addr
  [
    'addr malformed CIDR',
    () => parseAddr('add', w('10.0.0/24 dev eth0')),
    'E_CONFIG',
    'addr add CIDR: invalid address "10.0.0/24"',
  ],
  [
    'addr prefix over 32',
    () => parseAddr('add', w('10.0.0.1/33 dev eth0')),
    'E_CONFIG',
    'prefix length 33 is over 32',
  ],
  [
    'addr without prefix',
    () => parseAddr('add', w('10.0.0.1 dev eth0')),
    'E_CONFIG',
    '"10.0.0.1" has no prefix length',
  ],
  [
    'addr without dev',
    () => parseAddr('add', w('10.0.0.1/24')),
    'E_USAGE',
    'addr add dev: no device given',
  ],
  [
    'addr without address',
    () => parseAddr('del', w('dev eth0')),
    'E_USAGE',
    'addr del CIDR: no address given',
  ],
  [
    'addr two addresses',
    () => parseAddr('add', w('10.0.0.1/24 10.0.0.2/24 dev eth0')),
    'E_USAGE',
    'unexpected word "10.0.0.2/24"',
  ],
  [
    'addr bad dev',
    () => parseAddr('add', w('10.0.0.1/24 dev a..b')),
    'E_CONFIG',
    'addr add dev: invalid interface name',
  ],
  [
    'addr dev twice',
    () => parseAddr('add', w('10.0.0.1/24 dev a dev b')),
    'E_USAGE',
    '"dev" is given twice',
  ],
  [
    'addr list extra word',
    () => parseAddrList(w('dev eth0 up')),
    'E_USAGE',
    'unexpected word "up"',
  ],
  // route
  [
    'route no destination',
    () => parseRoute('add', w('via 10.0.0.1')),
    'E_USAGE',
    'route add PREFIX: no destination given',
  ],
  [
    'route malformed prefix',
    () => parseRoute('add', w('10.0.0.0/40 dev eth0')),
    'E_CONFIG',
    'route add PREFIX: prefix length 40 is over 32',
  ],
  [
    'route bad gateway',
    () => parseRoute('add', w('default via 10.0.0')),
    'E_CONFIG',
    'route add via: invalid IP address "10.0.0"',
  ],
  [
    'route gateway of the other family',
    () => parseRoute('add', w('10.1.0.0/16 via fd00::1')),
    'E_CONFIG',
    'gateway fd00::1 is not IPv4',
  ],
  [
    'route -6 default with an IPv4 gateway',
    () => parseRoute('add', w('default via 10.0.0.1'), true),
    'E_CONFIG',
    'is not IPv6',
  ],
  [
    'route src of the other family',
    () => parseRoute('add', w('10.1.0.0/16 dev eth0 src fd00::1')),
    'E_CONFIG',
    'route add src: source fd00::1',
  ],
  [
    'route add without via or dev',
    () => parseRoute('add', w('10.1.0.0/16')),
    'E_USAGE',
    'a route needs "via ADDR" or "dev NAME"',
  ],
  [
    'route bad metric',
    () => parseRoute('add', w('default via 10.0.0.1 metric -3')),
    'E_CONFIG',
    'route add metric: must be a whole number',
  ],
  [
    'route metric over u32',
    () => parseRoute('add', w('default via 10.0.0.1 metric 4294967296')),
    'E_CONFIG',
    'from 0 to 4294967295',
  ],
  [
    'route table 0',
    () => parseRoute('add', w('default via 10.0.0.1 table 0')),
    'E_CONFIG',
    'route add table: must be a whole number from 1',
  ],
  [
    'route table name unknown',
    () => parseRoute('add', w('default via 10.0.0.1 table blue')),
    'E_CONFIG',
    'got "blue"',
  ],
  [
    'route bad scope',
    () => parseRoute('add', w('default dev eth0 scope global')),
    'E_CONFIG',
    'unknown scope "global"',
  ],
  [
    'route two destinations',
    () => parseRoute('del', w('10.1.0.0/16 10.2.0.0/16')),
    'E_USAGE',
    'unexpected word "10.2.0.0/16"',
  ],
  [
    'route via without value',
    () => parseRoute('add', w('default via')),
    'E_USAGE',
    '"via" needs a gateway address',
  ],
]

for (const [name, run, code, text] of errorCases)
  test(`refuses ${name}: ${code}`, () => {
    assert.throws(run, (err: unknown) => {
      assert.ok(err instanceof NsdnError, `not an NsdnError: ${String(err)}`)
      assert.equal(err.code, code)
      assert.ok(err.message.includes(text), `message "${err.message}" lacks "${text}"`)
      assert.ok(err.hint, `no hint in "${err.message}"`)
      assert.doesNotMatch(err.message, /\n/)
      return true
    })
  })
