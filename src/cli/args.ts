/**
 * The iproute2-style keyword syntax of the CLI (`link add NAME type veth peer P netns NS`),
 * parsed into typed specs. Every name, number and address is validated here, before any
 * command touches the kernel, so bad input creates nothing. A word that does not fit the syntax
 * is E_USAGE; a value that is not valid is E_CONFIG (from src/validate.ts). Each error names
 * the argument it is about.
 * @module
 */
import { ConfigError, NsdnError } from '../errors.js'
import type { MacvlanMode } from '../netlink/link.js'
import type { LinkType, Op, VxlanOpts } from '../op.js'
import {
  type Cidr,
  parseCidr,
  parseIntIn,
  parseIp,
  parseMac,
  validIfName,
  validNetnsName,
} from '../validate.js'

export const LINK_TYPES = [
  'bridge',
  'veth',
  'macvlan',
  'vxlan',
  'vlan',
] as const satisfies readonly LinkType[]

export const MACVLAN_MODES = [
  'bridge',
  'private',
  'vepa',
  'passthru',
] as const satisfies readonly MacvlanMode[]

const U32_MAX = 0xffffffff
const VNI_MAX = 0xffffff
/** 4095 is reserved by 802.1Q. */
const VLAN_ID_MAX = 4094
const MTU_MIN = 68
const MTU_MAX = 65535

/** A syntax error: `where` is the command and argument, `hint` the usage line to follow. */
function usageError(where: string, message: string, hint: string): NsdnError {
  return new NsdnError('E_USAGE', `${where}: ${message}`, { hint })
}

/** A cursor over the words of one command, which knows the command's usage for its errors. */
class Words {
  private i = 0
  private readonly seen = new Set<string>()

  constructor(
    private readonly words: readonly string[],
    /** `link add`, `route del`: the prefix of every error's `where`. */
    readonly cmd: string,
    readonly usage: string,
  ) {}

  get done(): boolean {
    return this.i >= this.words.length
  }

  next(): string {
    const w = this.words[this.i++]
    if (w === undefined) throw new NsdnError('E_INTERNAL', `${this.cmd}: read past the end`)
    return w
  }

  /** The value after `keyword`, which may appear only once. */
  value(keyword: string, what: string): string {
    this.once(keyword)
    const v = this.words[this.i++]
    if (v === undefined) throw this.error(keyword, `"${keyword}" needs ${what}`)
    return v
  }

  /** Mark `keyword` as used; a second use is an error (ip takes the last, silently). */
  once(keyword: string): void {
    if (this.seen.has(keyword)) throw this.error(keyword, `"${keyword}" is given twice`)
    this.seen.add(keyword)
  }

  where(arg: string): string {
    return `${this.cmd} ${arg}`
  }

  error(arg: string, message: string): NsdnError {
    return usageError(this.where(arg), message, `usage: nsdn ${this.cmd} ${this.usage}`)
  }

  unknown(word: string): NsdnError {
    return this.error(word, `unexpected word ${JSON.stringify(word)}`)
  }
}

// ---- link add ---------------------------------------------------------------------------

interface LinkAddCommon {
  name: string
  /** Bridge the new link becomes a port of. */
  master?: string
  up: boolean
}

export type LinkAddSpec = LinkAddCommon &
  (
    | { type: 'bridge' }
    | { type: 'veth'; peer: string; peerNs?: string }
    | { type: 'macvlan'; parent: string; mode: MacvlanMode }
    | { type: 'vxlan'; vxlan: VxlanOpts }
    | { type: 'vlan'; parent: string; id: number }
  )

export const LINK_ADD_USAGE =
  'NAME [master BR] [up] type bridge | veth peer NAME [netns NS] | ' +
  'macvlan link PARENT [mode MODE] | vxlan id VNI [remote|group A] [local A] [dev D] ' +
  '[dstport P] | vlan link PARENT id VID'

const isLinkType = (t: string): t is LinkType => (LINK_TYPES as readonly string[]).includes(t)

/** `NAME [name NAME] [link PARENT] [master BR] [up] type TYPE [ARGS]`. */
export function parseLinkAdd(words: readonly string[]): LinkAddSpec {
  const w = new Words(words, 'link add', LINK_ADD_USAGE)
  let name: string | undefined
  let master: string | undefined
  let parent: string | undefined
  let up = false
  let type: string | undefined
  while (!w.done && type === undefined) {
    const k = w.next()
    if (k === 'type') type = w.value('type', 'a link type')
    else if (k === 'master') master = validIfName(w.value(k, 'a bridge name'), w.where(k))
    else if (k === 'link') parent = validIfName(w.value(k, 'a parent link'), w.where(k))
    else if (k === 'up') {
      w.once(k)
      up = true
    } else if (k === 'name' || name === undefined) {
      if (name !== undefined) throw w.error('name', 'the name is given twice')
      name = validIfName(k === 'name' ? w.value(k, 'an interface name') : k, w.where('NAME'))
    } else throw w.unknown(k)
  }
  if (name === undefined) throw w.error('NAME', 'no interface name given')
  if (type === undefined) throw w.error('type', 'no link type given ("type bridge", ...)')
  if (!isLinkType(type))
    throw new ConfigError(
      `unknown link type ${JSON.stringify(type)} (known: ${LINK_TYPES.join(', ')})`,
      w.where('type'),
      { hint: `use one of: ${LINK_TYPES.join(', ')}` },
    )
  const common: LinkAddCommon = { name, up, ...(master !== undefined ? { master } : {}) }
  if (parent !== undefined && type !== 'macvlan' && type !== 'vlan')
    throw w.error('link', `"link PARENT" applies to macvlan and vlan, not to ${type}`)
  switch (type) {
    case 'bridge':
      if (!w.done) throw w.unknown(w.next())
      return { ...common, type }
    case 'veth':
      return { ...common, type, ...parseVeth(w) }
    case 'macvlan':
      return { ...common, type, ...parseMacvlan(w, parent) }
    case 'vxlan':
      return { ...common, type, vxlan: parseVxlan(w) }
    case 'vlan':
      return { ...common, type, ...parseVlan(w, parent) }
  }
}

function parseVeth(w: Words): { peer: string; peerNs?: string } {
  let peer: string | undefined
  let peerNs: string | undefined
  while (!w.done) {
    const k = w.next()
    if (k === 'peer') {
      let p = w.value(k, 'a peer name')
      // ip's own spelling is "peer name NAME"; both are accepted.
      if (p === 'name') p = w.value('peer name', 'a peer name')
      peer = validIfName(p, w.where('peer'))
    } else if (k === 'netns' && peer !== undefined)
      peerNs = validNetnsName(w.value(k, 'a netns name'), w.where('netns'))
    else throw w.unknown(k)
  }
  if (peer === undefined) throw w.error('peer', 'a veth needs "peer NAME"')
  return { peer, ...(peerNs !== undefined ? { peerNs } : {}) }
}

function parseMacvlan(w: Words, before: string | undefined): { parent: string; mode: MacvlanMode } {
  let parent = before
  let mode: MacvlanMode = 'bridge'
  while (!w.done) {
    const k = w.next()
    if (k === 'link' && before === undefined)
      parent = validIfName(w.value(k, 'a parent link'), w.where(k))
    else if (k === 'mode') {
      const m = w.value(k, 'a mode')
      const known = MACVLAN_MODES.find((x) => x === m)
      if (!known)
        throw new ConfigError(`unknown macvlan mode ${JSON.stringify(m)}`, w.where('mode'), {
          hint: `use one of: ${MACVLAN_MODES.join(', ')}`,
        })
      mode = known
    } else throw w.unknown(k)
  }
  if (parent === undefined) throw w.error('link', 'a macvlan needs "link PARENT"')
  return { parent, mode }
}

function parseVxlan(w: Words): VxlanOpts {
  let id: number | undefined
  const v: Omit<VxlanOpts, 'id'> = {}
  while (!w.done) {
    const k = w.next()
    switch (k) {
      case 'id':
      case 'vni':
        if (id !== undefined) throw w.error(k, 'the VNI is given twice')
        id = parseIntIn(w.value(k, 'a VNI'), 0, VNI_MAX, w.where(k))
        break
      case 'remote':
      case 'local':
      case 'group':
        v[k] = parseIp(w.value(k, 'an IP address'), w.where(k)).address
        break
      case 'dev':
        v.dev = validIfName(w.value(k, 'an interface name'), w.where(k))
        break
      case 'dstport':
        v.dstport = parseIntIn(w.value(k, 'a UDP port'), 0, 65535, w.where(k))
        break
      default:
        throw w.unknown(k)
    }
  }
  if (id === undefined) throw w.error('id', 'a vxlan needs "id VNI"')
  if (v.remote !== undefined && v.group !== undefined)
    throw w.error('group', '"remote" and "group" exclude each other (unicast or multicast)')
  return { id, ...v }
}

function parseVlan(w: Words, before: string | undefined): { parent: string; id: number } {
  let parent = before
  let id: number | undefined
  while (!w.done) {
    const k = w.next()
    if (k === 'link' && before === undefined)
      parent = validIfName(w.value(k, 'a parent link'), w.where(k))
    else if (k === 'id') id = parseIntIn(w.value(k, 'a VLAN id'), 0, VLAN_ID_MAX, w.where(k))
    else throw w.unknown(k)
  }
  if (parent === undefined) throw w.error('link', 'a vlan needs "link PARENT"')
  if (id === undefined) throw w.error('id', 'a vlan needs "id VID"')
  return { parent, id }
}

// ---- link set / link del ----------------------------------------------------------------

/** What `link set` asks for: the fields of the link.set Op it becomes (its name; no netns). */
export type LinkSetSpec = Omit<Extract<Op, { kind: 'link.set' }>, 'kind' | 'ns'>

export const LINK_SET_USAGE =
  '[dev] NAME [up|down] [master BR|nomaster] [mtu N] [address MAC] [netns NS] [name NEW]'

/** `[dev] NAME` then one or more changes, applied in one request as ip does. */
export function parseLinkSet(words: readonly string[]): LinkSetSpec {
  const w = new Words(words, 'link set', LINK_SET_USAGE)
  const name = devName(w)
  const s: LinkSetSpec = { name }
  while (!w.done) {
    const k = w.next()
    switch (k) {
      case 'up':
      case 'down':
        if (s.up !== undefined) throw w.error(k, 'say "up" or "down" once')
        s.up = k === 'up'
        break
      case 'master':
      case 'nomaster':
        if (s.master !== undefined) throw w.error(k, 'say "master BR" or "nomaster" once')
        s.master = k === 'nomaster' ? null : validIfName(w.value(k, 'a bridge name'), w.where(k))
        break
      case 'mtu':
        s.mtu = parseIntIn(w.value(k, 'a number'), MTU_MIN, MTU_MAX, w.where(k))
        break
      case 'address': {
        const mac = w.value(k, 'a MAC address')
        parseMac(mac, w.where(k))
        s.address = mac.toLowerCase()
        break
      }
      case 'netns':
        s.netns = validNetnsName(w.value(k, 'a netns name'), w.where(k))
        break
      case 'name':
        s.newName = validIfName(w.value(k, 'a new name'), w.where(k))
        break
      default:
        throw w.unknown(k)
    }
  }
  if (Object.keys(s).length === 1) throw w.error('NAME', `nothing to change on "${name}"`)
  return s
}

/** `[dev] NAME` alone: link del, and the device of a list. */
export function parseLinkDel(words: readonly string[]): string {
  const w = new Words(words, 'link del', '[dev] NAME')
  const name = devName(w)
  if (!w.done) throw w.unknown(w.next())
  return name
}

function devName(w: Words): string {
  if (w.done) throw w.error('NAME', 'no interface name given')
  let k = w.next()
  if (k === 'dev') k = w.value(k, 'an interface name')
  return validIfName(k, w.where('NAME'))
}

// ---- addr -------------------------------------------------------------------------------

export interface AddrSpec {
  cidr: Cidr
  dev: string
  /** IPv6: skip duplicate address detection. */
  nodad: boolean
}

export const ADDR_USAGE = 'CIDR dev NAME [nodad]'

/** `CIDR dev NAME [nodad]`, for `addr add` and `addr del`; the words may come in any order. */
export function parseAddr(verb: 'add' | 'del', words: readonly string[]): AddrSpec {
  const w = new Words(words, `addr ${verb}`, ADDR_USAGE)
  let cidr: Cidr | undefined
  let dev: string | undefined
  let nodad = false
  while (!w.done) {
    const k = w.next()
    if (k === 'dev') dev = validIfName(w.value(k, 'an interface name'), w.where(k))
    else if (k === 'nodad') {
      w.once(k)
      nodad = true
    } else if (cidr === undefined) {
      const text = k === 'local' ? w.value(k, 'an address') : k
      cidr = parseCidr(text, w.where('CIDR'), true)
    } else throw w.unknown(k)
  }
  if (cidr === undefined) throw w.error('CIDR', 'no address given (e.g. 10.0.0.1/24)')
  if (dev === undefined) throw w.error('dev', 'no device given ("dev NAME")')
  return { cidr, dev, nodad }
}

/** `[dev NAME]`, for `addr list`. */
export function parseAddrList(words: readonly string[]): { dev?: string } {
  const w = new Words(words, 'addr list', '[dev NAME]')
  if (w.done) return {}
  const dev = devName(w)
  if (!w.done) throw w.unknown(w.next())
  return { dev }
}

// ---- route ------------------------------------------------------------------------------

export interface RouteArgs {
  /** A prefix as written, or "default". */
  dst: string
  family: 4 | 6
  via?: string
  dev?: string
  src?: string
  metric?: number
  table?: number
  scope?: 'link' | 'host'
}

export const ROUTE_USAGE =
  'PREFIX|default [via ADDR] [dev NAME] [src ADDR] [metric N] [table N] [scope link|host]'

const TABLE_NAMES: Record<string, number> = { default: 253, main: 254, local: 255 }

/**
 * `PREFIX|default [via A] [dev D] [src A] [metric N] [table N] [scope S]` for route add and
 * del. `family6` comes from `-6` and matters only for a default route without a gateway.
 */
export function parseRoute(
  verb: 'add' | 'del',
  words: readonly string[],
  family6 = false,
): RouteArgs {
  const w = new Words(words, `route ${verb}`, ROUTE_USAGE)
  let dst: string | undefined
  let family: 4 | 6 = family6 ? 6 : 4
  const r: Omit<RouteArgs, 'dst' | 'family'> = {}
  while (!w.done) {
    const k = w.next()
    switch (k) {
      case 'via':
        r.via = w.value(k, 'a gateway address')
        break
      case 'src':
        r.src = w.value(k, 'a source address')
        break
      case 'dev':
        r.dev = validIfName(w.value(k, 'an interface name'), w.where(k))
        break
      case 'metric':
        r.metric = parseIntIn(w.value(k, 'a number'), 0, U32_MAX, w.where(k))
        break
      case 'table': {
        const t = w.value(k, 'a table number or main')
        r.table = TABLE_NAMES[t] ?? parseIntIn(t, 1, U32_MAX, w.where(k))
        break
      }
      case 'scope': {
        const s = w.value(k, 'link or host')
        if (s !== 'link' && s !== 'host')
          throw new ConfigError(`unknown scope ${JSON.stringify(s)}`, w.where(k), {
            hint: 'use link or host',
          })
        r.scope = s
        break
      }
      default: {
        if (dst !== undefined) throw w.unknown(k)
        const text = k === 'to' ? w.value(k, 'a prefix') : k
        if (text !== 'default') family = parseCidr(text, w.where('PREFIX')).family
        dst = text
      }
    }
  }
  if (dst === undefined) throw w.error('PREFIX', 'no destination given (a prefix or "default")')
  if (r.via !== undefined) {
    const gw = parseIp(r.via, w.where('via'))
    if (dst === 'default' && !family6) family = gw.family
    if (gw.family !== family)
      throw new ConfigError(`gateway ${r.via} is not IPv${family} like ${dst}`, w.where('via'), {
        hint: 'a route and its gateway are of one family; "-6" selects IPv6 for "default"',
      })
  }
  if (r.src !== undefined && parseIp(r.src, w.where('src')).family !== family)
    throw new ConfigError(`source ${r.src} is not IPv${family} like ${dst}`, w.where('src'), {
      hint: "give a source address of the route's family",
    })
  if (verb === 'add' && r.via === undefined && r.dev === undefined)
    throw w.error('dev', 'a route needs "via ADDR" or "dev NAME"')
  return { dst, family, ...r }
}
