/**
 * nsdn's own nftables rules, made with the `nft` binary (argv arrays, never a shell line), in
 * tables of its own so they never mix with anyone else's:
 * - `table inet nsdn`, chain `postrouting` (nat): one masquerade rule per container address;
 * - `table bridge nsdn`, chain `prerouting` (filter): one MAC spoof check per bridge port.
 * Every rule carries a comment, the attachment's tag, so del finds it by container and
 * interface alone. The tables and chains stay when their last rule goes (a concurrent add may
 * be using them), as the CNI bridge plugin leaves its bridge.
 * @module
 */
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { ExecError, NsdnError } from '../errors.js'
import { validOwner } from '../ipam/store.js'
import { runOp } from '../op.js'
import { type Cidr, parseMac, validIfName } from '../validate.js'

const TABLE = 'nsdn'
/** nft refuses longer comments. */
const MAX_COMMENT = 128

export type NftFamily = 'inet' | 'bridge'

const CHAINS: Record<NftFamily, { chain: string; spec: string[] }> = {
  inet: {
    chain: 'postrouting',
    spec: ['type', 'nat', 'hook', 'postrouting', 'priority', 'srcnat'],
  },
  bridge: {
    chain: 'prerouting',
    spec: ['type', 'filter', 'hook', 'prerouting', 'priority', 'filter'],
  },
}

/** A rule of ours as `nft -j` lists it. */
export interface NftRule {
  family: NftFamily
  chain: string
  handle: number
  comment: string
  /** The rule's expressions, as nft's JSON schema writes them. */
  expr: unknown[]
}

/**
 * The comment that marks an attachment's rules: `nsdn:<containerId>/<ifname>`. Both are
 * validated first: nft parses its arguments, so nothing unchecked may reach them.
 */
export function nftTag(containerId: string, ifname: string): string {
  validOwner(containerId, ifname)
  const tag = `nsdn:${containerId}/${ifname}`
  if (tag.length <= MAX_COMMENT) return tag
  return `nsdn:${createHash('sha256').update(`${containerId}/${ifname}`).digest('hex')}`
}

function execNft(argv: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('nft', argv, { timeout: 10_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout)
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        return reject(
          new NsdnError('E_UNAVAILABLE', 'the nft program is not installed', {
            hint: 'install nftables (apt-get install nftables): ipMasq and macspoofchk use it',
          }),
        )
      const line = stderr.split('\n').find((l) => l.trim() !== '') ?? String(err)
      const exit = typeof err.code === 'number' ? err.code : null
      reject(
        new ExecError(`nft ${argv.slice(0, 4).join(' ')}: ${line}`, ['nft', ...argv], exit, stderr),
      )
    })
  })
}

/** Equivalent: `nft ARGV...`. */
const nft = (argv: string[]): Promise<string> =>
  runOp({ kind: 'nft', argv }, () => execNft(argv), '')

/** nft commands in one call (one transaction): `;` separates them. */
const batch = (cmds: string[][]): string[] => cmds.flatMap((c, i) => (i ? [';', ...c] : c))

const ensureChain = (family: NftFamily): string[][] => [
  ['add', 'table', family, TABLE],
  ['add', 'chain', family, TABLE, CHAINS[family].chain, '{', ...CHAINS[family].spec, ';', '}'],
]

const quoted = (s: string): string => `"${s}"`
/** Arguments from a template of validated parts, none of which holds a space. */
const words = (s: string): string[] => s.split(' ')

/**
 * Masquerade what the container sends from `ip` to anywhere but its own subnet and multicast,
 * as the CNI plugins' ipMasq does. Table, chain and rules in one transaction.
 * Equivalent: `nft add rule inet nsdn postrouting ip saddr A ip daddr != NET ... masquerade`.
 */
export async function masqAdd(tag: string, ips: readonly Cidr[]): Promise<void> {
  const rules = ips.map((c) => {
    const f = c.family === 4 ? 'ip' : 'ip6'
    const mcast = c.family === 4 ? '224.0.0.0/4' : 'ff00::/8'
    // nft takes 10.1.0.10/24 as the subnet 10.1.0.0/24.
    const net = `${c.address}/${c.prefixLen}`
    return [
      ...words(`add rule inet ${TABLE} postrouting ${f} saddr ${c.address}`),
      ...words(`${f} daddr != ${net} ${f} daddr != ${mcast} masquerade comment`),
      quoted(tag),
    ]
  })
  if (rules.length) await nft(batch([...ensureChain('inet'), ...rules]))
}

/**
 * Drop frames that enter the bridge from port `hostIf` with a source MAC other than `mac`
 * (the container's), so a container cannot pose as another.
 * Equivalent: `nft add rule bridge nsdn prerouting iifname IF ether saddr != MAC drop`.
 */
export async function macSpoofAdd(tag: string, hostIf: string, mac: string): Promise<void> {
  validIfName(hostIf)
  parseMac(mac, 'mac')
  const rule = [
    ...words(`add rule bridge ${TABLE} prerouting iifname`),
    quoted(hostIf),
    ...words(`ether saddr != ${mac.toLowerCase()} drop comment`),
    quoted(tag),
  ]
  await nft(batch([...ensureChain('bridge'), rule]))
}

/** Our rules in one family's table carrying `tag`; none when the table does not exist. */
export async function nftRules(family: NftFamily, tag: string): Promise<NftRule[]> {
  return (await nftTableRules(family, TABLE)).filter((r) => r.comment === tag)
}

/** Every rule of a table (nsdn's, or another of nsdn's, e.g. the portmap plugin's). */
export async function nftTableRules(family: NftFamily, table: string): Promise<NftRule[]> {
  const argv = ['-j', 'list', 'table', family, table]
  let out: string
  try {
    out = await runOp({ kind: 'nft.show', argv }, () => execNft(argv), '')
  } catch (err) {
    if (err instanceof ExecError && /No such file or directory/.test(err.stderr)) return []
    throw err
  }
  if (!out.trim()) return []
  const items = (JSON.parse(out) as { nftables?: { rule?: NftRule }[] }).nftables ?? []
  return items.flatMap((i) => (i.rule ? [i.rule] : []))
}

/** nft commands in one transaction. Equivalent: `nft 'CMD ; CMD ...'`. */
export const nftBatch = (cmds: string[][]): Promise<string> => nft(batch(cmds))

/**
 * Remove every rule carrying `tag` in the given families. Succeeds when there are none, or no
 * tables, or (as a del must) no nft at all: then there is nothing of ours to remove either.
 * Equivalent: `nft delete rule FAMILY nsdn CHAIN handle N`.
 */
export async function nftRulesDel(tag: string, families: readonly NftFamily[]): Promise<void> {
  try {
    const rules = (await Promise.all(families.map((f) => nftRules(f, tag)))).flat()
    if (!rules.length) return
    await nft(
      batch(
        rules.map((r) => ['delete', 'rule', r.family, TABLE, r.chain, 'handle', String(r.handle)]),
      ),
    )
  } catch (err) {
    if (err instanceof NsdnError && err.code === 'E_UNAVAILABLE') return
    // A concurrent del removed them first.
    if (err instanceof ExecError && /No such file or directory/.test(err.stderr)) return
    throw err
  }
}
