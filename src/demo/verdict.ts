/**
 * The end of a demo: what is left in its sandbox (nothing, when it cleaned up) and the verdict.
 * @module
 */
import { linkList } from '../netlink/link.js'
import { Rtnl } from '../netlink/rtnl.js'
import { NetNs } from '../netns/netns.js'
import { ovsStatus } from '../ovs/daemon.js'

const out = (line: string): void => void process.stdout.write(line + '\n')

async function leftovers(): Promise<string[]> {
  const left = NetNs.list().map((n) => `netns ${n}`)
  const links = await linkList(Rtnl.for())
  left.push(...links.filter((l) => l.name !== 'lo').map((l) => `link ${l.name}`))
  if ((await ovsStatus()).running) left.push('a running ovs-vswitchd')
  Rtnl.closeAll()
  return left
}

/** Print the verdicts, look for leftovers, say PASS or FAIL; the exit status. */
export async function verdict(verdicts: string[], ok: boolean, passed: string): Promise<number> {
  const left = await leftovers()
  out('\n# verdict')
  for (const v of verdicts) out(`  ${v}`)
  if (left.length) out(`  FAIL: left behind: ${left.join(', ')}`)
  else out('  ok   nothing left behind')
  const pass = ok && left.length === 0
  out(pass ? `PASS: ${passed}` : 'FAIL')
  return pass ? 0 : 1
}
