/**
 * nsdn's own nftables rules, made with the `nft` binary (a script on its stdin, never a shell
 * line), in tables of its own so they never mix with anyone else's:
 * - `table inet nsdn`: per attachment, a nat base chain on postrouting that masquerades the
 *   container's addresses;
 * - `table bridge nsdn`: per attachment, a filter base chain on prerouting, the MAC spoof check.
 * The chain is named after the attachment's host veth, so del removes it by that name (no rule
 * handle, which differs between two hosts), and every rule carries the attachment's tag as a
 * comment for check. The tables stay when their last chain goes (a concurrent add may be using
 * them), as the CNI bridge plugin leaves its bridge.
 * @module
 */
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { ExecError, NsdnError } from '../errors.js'
import { validOwner } from '../ipam/store.js'
import { explainWhy, runOp } from '../op.js'
import { type Cidr, parseMac, validIfName } from '../validate.js'
import { subnetOf } from './subnet.js'
import { hostVethName } from './veth.js'

const TABLE = 'nsdn'
/** nft refuses longer comments. */
const MAX_COMMENT = 128

export type NftFamily = 'inet' | 'bridge'

/** The hook of each family's base chains. */
const HOOKS: Record<NftFamily, string> = {
  inet: 'type nat hook postrouting priority srcnat;',
  bridge: 'type filter hook prerouting priority filter;',
}

/** Who owns a chain: the comment on its rules, and the chain's name (the host veth's). */
export interface NftOwner {
  tag: string
  chain: string
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

function execNft(argv: string[], stdin?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const opts = { timeout: 10_000, encoding: 'utf8' } as const
    const child = execFile('nft', argv, opts, (err, stdout, stderr) => {
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
    // nft may exit before reading its input (a list of a missing table): its status says why.
    child.stdin?.on('error', () => undefined)
    child.stdin?.end(stdin ?? '')
  })
}

/** Equivalent: `nft -f - <<'EOF'` SCRIPT `EOF`: one transaction. */
const nftScript = (script: string): Promise<string> =>
  runOp({ kind: 'nft.script', script }, () => execNft(['-f', '-'], script), '')

/**
 * The owner of an attachment's rules: the tag `nsdn:<containerId>/<ifname>` and the chain
 * named after its host veth. Both are validated first: nft parses its input, so nothing
 * unchecked may reach it.
 */
export function nftOwner(containerId: string, ifname: string): NftOwner {
  return { tag: nftTag(containerId, ifname), chain: hostVethName(containerId, ifname) }
}

/** The attachment's base chain with `rules`, as a person writes it for `nft -f`. */
const chainScript = (family: NftFamily, o: NftOwner, rules: string[]): string =>
  [
    `table ${family} ${TABLE} {`,
    `  chain ${o.chain} {`,
    `    ${HOOKS[family]}`,
    ...rules.map((r) => `    ${r} comment "${o.tag}"`),
    '  }',
    '}',
  ].join('\n')

/**
 * Masquerade what the container sends from `ip` to anywhere but its own subnet and multicast,
 * as the CNI plugins' ipMasq does: the attachment's chain in `table inet nsdn`.
 */
export async function masqAdd(o: NftOwner, ips: readonly Cidr[]): Promise<void> {
  const rules = ips.map((c) => {
    const f = c.family === 4 ? 'ip' : 'ip6'
    const mcast = c.family === 4 ? '224.0.0.0/4' : 'ff00::/8'
    return `${f} saddr ${c.address} ${f} daddr != ${subnetOf(c)} ${f} daddr != ${mcast} masquerade`
  })
  if (!rules.length) return
  explainWhy('masquerade: what leaves the subnet goes out with the host address')
  await nftScript(chainScript('inet', o, rules))
}

/**
 * Drop frames that enter the bridge from port `hostIf` with a source MAC other than `mac`
 * (the container's), so a container cannot pose as another.
 */
export async function macSpoofAdd(o: NftOwner, hostIf: string, mac: string): Promise<void> {
  validIfName(hostIf)
  parseMac(mac, 'mac')
  const rule = `iifname "${hostIf}" ether saddr != ${mac.toLowerCase()} drop`
  await nftScript(chainScript('bridge', o, [rule]))
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

/** nft commands of validated words in one transaction, as an `nft -f -` script. */
export const nftBatch = (cmds: string[][]): Promise<string> =>
  nftScript(cmds.map((c) => c.join(' ')).join('\n'))

/** Whether the attachment's chain exists in a family's table (a read: not printed). */
async function hasChain(family: NftFamily, chain: string): Promise<boolean> {
  const argv = ['list', 'chain', family, TABLE, chain]
  try {
    await runOp({ kind: 'nft.show', argv }, () => execNft(argv), '')
    return true
  } catch (err) {
    if (err instanceof ExecError && /No such file or directory/.test(err.stderr)) return false
    throw err
  }
}

/**
 * Remove the attachment's chains (and so its rules) in the given families. Succeeds when there
 * are none, or no tables, or (as a del must) no nft at all: then there is nothing of ours to
 * remove either. Equivalent: `nft delete chain FAMILY nsdn CHAIN`.
 */
export async function nftRulesDel(o: NftOwner, families: readonly NftFamily[]): Promise<void> {
  try {
    for (const f of families) {
      if (!(await hasChain(f, o.chain))) continue
      const argv = ['delete', 'chain', f, TABLE, o.chain]
      await runOp({ kind: 'nft', argv }, () => execNft(argv), '')
    }
  } catch (err) {
    if (err instanceof NsdnError && err.code === 'E_UNAVAILABLE') return
    // A concurrent del removed them first.
    if (err instanceof ExecError && /No such file or directory/.test(err.stderr)) return
    throw err
  }
}
