/**
 * Deploy: resolve and preflight (nothing touched yet), then either nothing (the same lab is up
 * and whole), or undo the recorded one (a changed file, an interrupted deploy) and build the
 * plan, journaling as it goes; on failure undo what was made. Ready when its ports forward.
 * @module
 */
import path from 'node:path'
import { NsdnError } from '../errors.js'
import { linkList } from '../netlink/link.js'
import { Rtnl } from '../netlink/rtnl.js'
import { NetNs } from '../netns/netns.js'
import { opMode } from '../op.js'
import { defaultDatapathType, ovsClient, ovsStatus } from '../ovs/daemon.js'
import { runRemovals, runSteps, waitReady } from './apply.js'
import { containerStatus } from './containers.js'
import { undo } from './destroy.js'
import { type Loaded, loadFile, loadText } from './load.js'
import { type Created, type Step, plan } from './plan.js'
import { reconcile } from './reconcile.js'
import { preflight } from './preflight.js'
import { type Lab, resolve } from './resolve.js'
import {
  type Journal,
  type Recorded,
  begin,
  forget,
  markComplete,
  mustReadLab,
  readLab,
  rewriteJournal,
} from './state.js'

/** A lab from a file (when `ref` names one) or from the record of a deployed lab. */
export function labFrom(ref: string): Lab {
  if (ref.includes('/') || /\.ya?ml$/.test(ref)) return resolve(loadFile(ref))
  const rec = mustReadLab(ref)
  return resolve(loadText(rec.text, rec.meta.file))
}

/** Load, resolve and preflight a lab file: every check deploy makes, nothing created. */
export async function validateFile(file: string): Promise<Lab> {
  const loaded: Loaded = loadFile(file)
  const lab = resolve(loaded)
  await preflight(lab)
  return lab
}

/** The steps that build lab now (the OVS daemon step only when none runs). */
export async function planFor(lab: Lab, assumeFresh = false): Promise<Step[]> {
  const needsOvs = lab.switches.some((s) => s.kind === 'ovs')
  const running = needsOvs && !assumeFresh ? (await ovsStatus()).running : false
  const datapath = needsOvs ? await defaultDatapathType() : 'netdev'
  return plan(lab, { ovsRunning: running, datapath })
}

/** Whether every object of a recorded lab is still there. */
async function whole(created: readonly Created[]): Promise<boolean> {
  const links = new Set((await linkList(Rtnl.for())).map((l) => l.name))
  let bridges: Set<string> | undefined
  for (const c of created) {
    if ('netns' in c && !NetNs.exists(c.netns)) return false
    if ('link' in c && !links.has(c.link)) return false
    if ('container' in c && (await containerStatus(c.container)).status !== 'running') return false
    if ('ovsBridge' in c) {
      if (!(await ovsStatus()).running) return false
      bridges ??= new Set(await ovsClient().listBr())
      if (!bridges.has(c.ovsBridge)) return false
    }
  }
  return true
}

/**
 * `created`: built from nothing; `rebuilt`: a lab that was interrupted, failed or lost an object
 * (a container died) removed and built again; `unchanged`: the same file, and every object
 * there; `reconciled`: the file changed, and what changed was removed, created or patched in
 * place.
 */
export type DeployResult = 'created' | 'rebuilt' | 'unchanged' | 'reconciled'

export interface DeployOpts {
  progress?: (done: number, total: number) => void
}

/** An object's identity in the journal (a sysctl's recorded value aside). */
function key(c: Created): string {
  return 'sysctl' in c ? `sysctl:${c.sysctl}` : JSON.stringify(c)
}

const NO_JOURNAL = { record: () => undefined, close: () => undefined } as unknown as Journal

/** The recorded lab as it was deployed, when its text still resolves (else: rebuild it). */
function recordedLab(prev: Recorded): Lab | undefined {
  try {
    return resolve(loadText(prev.text, prev.meta.file))
  } catch {
    return undefined
  }
}

export async function deploy(lab: Lab, o: DeployOpts = {}): Promise<DeployResult> {
  await preflight(lab)
  const meta = { name: lab.name, file: path.resolve(lab.file), hash: lab.hash, complete: false }
  const prev = opMode.dryRun ? undefined : readLab(lab.name)
  const intact = prev !== undefined && prev.meta.complete && (await whole(prev.created))
  if (intact && prev.meta.hash === lab.hash) return 'unchanged'
  const before = intact ? recordedLab(prev) : undefined
  if (prev && !before) {
    if (opMode.explain) opMode.write(`# lab ${lab.name} was interrupted: rebuild it`)
    await undo(prev.created, lab.name)
    forget(lab.name)
  }
  const full = await planFor(lab)
  let steps = full
  // The journal before anything changes: kill-safe, it names a superset of what exists.
  const journal = opMode.dryRun ? NO_JOURNAL : begin(meta, lab.text)
  try {
    if (prev && before) {
      if (opMode.explain) opMode.write(`# lab ${lab.name} changed: reconcile it, object by object`)
      const ovs = [before, lab].some((l) => l.switches.some((s) => s.kind === 'ovs'))
      const datapath = ovs ? await defaultDatapathType() : 'netdev'
      const r = reconcile(plan(before, { ovsRunning: true, datapath }), full, prev.created)
      await runRemovals(r.remove)
      if (!lab.switches.some((s) => s.kind === 'ovs'))
        await undo(
          prev.created.filter((c) => 'ovsDaemon' in c),
          lab.name,
        )
      steps = r.steps
    }
    await runSteps(steps, { journal, ...(o.progress ? { progress: o.progress } : {}) })
    await waitReady(steps.flatMap((s) => (s.creates ? [s.creates] : [])))
    if (prev && before) rewriteJournal(lab.name, recordOf(full, readLab(lab.name)?.created ?? []))
  } catch (err) {
    journal.close()
    if (opMode.dryRun) throw err
    const rec = readLab(lab.name)
    try {
      await undo(rec?.created ?? [], lab.name)
      forget(lab.name)
    } catch (e) {
      throw new NsdnError(
        'E_KERNEL',
        `deploy failed, and so did its undo: ${(e as Error).message}`,
        {
          cause: err,
          hint: `"nsdn lab destroy ${lab.name}" tries again`,
        },
      )
    }
    throw err
  }
  journal.close()
  if (!opMode.dryRun) markComplete(meta)
  return prev && before ? 'reconciled' : prev ? 'rebuilt' : 'created'
}

/**
 * The journal of a reconciled lab: each object of its plan once, as first recorded (a host
 * sysctl keeps its value from before the lab), and the private OVS while it has OVS switches.
 */
function recordOf(full: readonly Step[], journal: readonly Created[]): Created[] {
  const wants = new Set(full.flatMap((s) => (s.creates ? [key(s.creates)] : [])))
  const ovs = full.some((s) => s.owner.startsWith('switch:') && s.op.kind === 'ovs.vsctl')
  const seen = new Set<string>()
  return journal.filter((c) => {
    const k = key(c)
    if (seen.has(k) || !(wants.has(k) || ('ovsDaemon' in c && ovs))) return false
    seen.add(k)
    return true
  })
}
