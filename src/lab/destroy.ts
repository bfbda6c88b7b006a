/**
 * Undo from the journal: whatever a lab's deploy recorded (even if it was killed half-way, even
 * if the lab file changed or is gone) is removed, and "already gone" counts as removed. Order:
 * OVS bridges, the lab's devices in the root namespace, its containers and namespaces (which
 * take their veth ends, addresses, routes, qdiscs and nft tables along), then the private OVS
 * when the lab started it and no other lab uses it.
 * @module
 */
import { errorMessage, ignoreNotFound, isCode } from '../errors.js'
import {
  type LinkBrief,
  linkBriefs,
  linkDel,
  linkDelGroup,
  linkList,
  tryLinkByName,
} from '../netlink/link.js'
import { Rtnl } from '../netlink/rtnl.js'
import { HELPER_MIN, NetnsHelper } from '../netns/helper.js'
import { NetNs } from '../netns/netns.js'
import { opMode, runOp } from '../op.js'
import { sysctlGet, sysctlSet } from '../sysctl.js'
import type { Created } from './plan.js'
import { forget, listLabs, mustReadLab, readLab } from './state.js'

type RootLink = Extract<Created, { link: string }>

const why = (text: string): void => {
  if (opMode.explain || opMode.dryRun) opMode.write(`# ${text}`)
}

/** Destroy a deployed lab from its record. */
export async function destroy(name: string): Promise<void> {
  const rec = mustReadLab(name)
  await undo(rec.created, name)
  // --dry-run changes nothing: the record too stays
  if (!opMode.dryRun) forget(name)
}

/** Remove everything in `created`; `self` is the lab's name (other labs may share the OVS). */
export async function undo(created: readonly Created[], self: string): Promise<void> {
  const nss = new Set<string>()
  const links: RootLink[] = []
  const bridges: string[] = []
  const tables: string[] = []
  const sysctls: { sysctl: string; was?: string }[] = []
  const containers: string[] = []
  let ovsDir: string | undefined
  for (const c of created) {
    if ('netns' in c) nss.add(c.netns)
    else if ('container' in c) {
      // its netns goes with it: so do the veths into it
      containers.push(c.container)
      nss.add(c.container)
    } else if ('link' in c) links.push(c)
    else if ('ovsBridge' in c) bridges.push(c.ovsBridge)
    else if ('nftTable' in c) tables.push(c.nftTable)
    else if ('sysctl' in c) sysctls.push(c)
    else ovsDir = c.ovsDaemon
  }
  // What a lab has not got is not loaded (a command's start-up is its user's latency).
  if (tables.length) {
    const { nftRun } = await import('./apply.js')
    why("the lab's nft tables in the root namespace")
    for (const t of tables)
      await nftRun({ kind: 'nft', argv: ['delete', 'table', 'ip', t] }).catch(ignoreMissing)
  }
  for (const s of sysctls) {
    if (
      s.was === undefined ||
      s.was === sysctlGet(NetNs.current(), s.sysctl) ||
      othersSet(self, s.sysctl)
    )
      continue
    why(`${s.sysctl} back to ${s.was}, as it was before the lab`)
    sysctlSet(NetNs.current(), s.sysctl, s.was)
  }
  const daemon = bridges.length || ovsDir ? await import('../ovs/daemon.js') : undefined
  const ovs = daemon && (await daemon.ovsStatus(ovsDir ? { runDir: ovsDir } : {}))
  if (bridges.length && ovs?.running) {
    why('the Open vSwitch bridges, with their ports')
    await daemon!.ovsClient().run(bridges.map((b) => ['--if-exists', 'del-br', b]))
  }
  // one read of the directory, not a look-up a namespace
  const existing = (): string[] => {
    const here = new Set(NetNs.list())
    return [...nss].filter((n) => here.has(n))
  }
  // The devices go before the namespaces: a namespace torn down first would take its veths
  // along in the kernel's own teardown, under the lock the devices' removal needs. Many
  // namespaces (and no containers, which own theirs): the helper unmounts them on the other
  // CPU meanwhile, each held until it ends (helper.c), after the devices.
  const many = !containers.length && !opMode.explain && !opMode.dryRun && nss.size >= HELPER_MIN
  const beside = many ? NetnsHelper.start() : undefined
  const unmounted = beside && Promise.all(existing().map((n) => beside.delete(n)))
  unmounted?.catch(() => undefined) // awaited below
  const root = Rtnl.for()
  let taken: string[]
  try {
    taken = await rootDevices(root, links, nss)
    if (containers.length) {
      why("the lab's containers: processes, cgroups, root filesystems, netns")
      await (await import('./containers.js')).removeContainers(containers)
    }
    if (unmounted) await unmounted
    else {
      // With containers, read after them: their namespaces went with them.
      const left = existing()
      if (left.length) why('the namespaces, and everything in them: interfaces, addresses, routes')
      for (const n of left) NetNs.delete(n)
    }
  } finally {
    // its end lets the kernel tear the namespaces down
    beside?.close()
  }
  if (!opMode.dryRun) await vanish(root, taken)
  if (ovsDir && ovs?.running && !othersUseOvs(self)) {
    why('the private Open vSwitch this lab started')
    await runOp(
      { kind: 'ovs.daemon', action: 'stop', runDir: ovsDir },
      () => daemon!.ovsStop({ runDir: ovsDir }),
      undefined,
    )
  }
}

/**
 * Remove the lab's devices in the root namespace. Those made in the lab's device group go in
 * one request, once one dump has shown that the group holds nothing that is not the lab's;
 * the rest one by one, except a veth whose peer is in a namespace about to go (it goes with
 * it). Returns those: the devices the namespaces' deletion takes along.
 */
async function rootDevices(
  root: Rtnl,
  links: readonly RootLink[],
  nss: ReadonlySet<string>,
): Promise<string[]> {
  const taken = links.filter((l) => l.peerNs && nss.has(l.peerNs)).map((l) => l.link)
  const groups = new Set(links.flatMap((l) => (l.group ? [l.group] : [])))
  let here: Map<string, LinkBrief> | undefined
  const gone = new Set<string>()
  if (groups.size) {
    here = new Map((await linkBriefs(root)).map((l) => [l.name, l]))
    const mine = new Set(links.map((l) => l.link))
    for (const g of groups) {
      const members = [...here.values()].filter((l) => l.group === g)
      if (!members.length || !members.every((l) => mine.has(l.name))) continue
      why(
        `the lab's devices in the root namespace, all in its device group ${g}, in one go ` +
          '(a veth takes its peer along)',
      )
      await ignoreNotFound(linkDelGroup(root, g))
      for (const l of members) gone.add(l.name)
    }
  }
  let said = false
  for (const l of links) {
    if (gone.has(l.link) || (l.peerNs && nss.has(l.peerNs))) continue
    // One look-up a device when there was no dump: few devices are not taken along.
    const found = here ? here.get(l.link) : await tryLinkByName(root, l.link)
    if (!found) continue
    if (!said) why("the lab's devices in the root namespace (a veth takes its peer along)")
    said = true
    await ignoreNotFound(linkDel(root, found))
  }
  return taken.filter((n) => !gone.has(n) && (!here || here.has(n)))
}

/**
 * Wait until the kernel has removed these devices (it destroys namespaces asynchronously, the
 * last deleted last): a cheap lookup of the last one first, then one full list to confirm (a
 * dump of every link, repeated, would compete with the kernel's own cleanup; so would a lookup
 * every millisecond, which on a busy machine takes the CPU from the kernel's cleanup worker).
 */
async function vanish(root: Rtnl, names: string[]): Promise<void> {
  const last = names.at(-1)
  if (last === undefined) return
  const want = new Set(names)
  const end = Date.now() + 60_000
  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
  while (Date.now() < end && (await tryLinkByName(root, last))) await sleep(4)
  // The kernel is removing links meanwhile: a dump it keeps interrupting means "not yet".
  const left = (): Promise<boolean> =>
    linkList(root).then(
      (ls) => ls.some((l) => want.has(l.name)),
      (err: unknown) => {
        if (isCode(err, 'E_TRY_AGAIN')) return true
        throw err
      },
    )
  while (Date.now() < end && (await left())) await sleep(5)
}

/** nft's answer when the table is gone already. */
function ignoreMissing(err: unknown): void {
  if (!/No such file or directory/.test(errorMessage(err))) throw err
}

/** Whether another deployed lab set this host sysctl too (it still needs it). */
function othersSet(self: string, key: string): boolean {
  return listLabs()
    .filter((n) => n !== self)
    .some((n) => readLab(n)?.created.some((c) => 'sysctl' in c && c.sysctl === key))
}

/** Whether another deployed lab has OVS bridges or started the OVS. */
function othersUseOvs(self: string): boolean {
  return listLabs()
    .filter((n) => n !== self)
    .some((n) => readLab(n)?.created.some((c) => 'ovsBridge' in c || 'ovsDaemon' in c))
}
