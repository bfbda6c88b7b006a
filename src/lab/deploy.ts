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
import { runSteps, waitReady } from './apply.js'
import { undo } from './destroy.js'
import { type Loaded, loadFile, loadText } from './load.js'
import { type Created, type Step, plan } from './plan.js'
import { preflight } from './preflight.js'
import { type Lab, resolve } from './resolve.js'
import { type Journal, begin, forget, markComplete, mustReadLab, readLab } from './state.js'

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
    if ('ovsBridge' in c) {
      if (!(await ovsStatus()).running) return false
      bridges ??= new Set(await ovsClient().listBr())
      if (!bridges.has(c.ovsBridge)) return false
    }
  }
  return true
}

export type DeployResult = 'created' | 'unchanged' | 'rebuilt'

export interface DeployOpts {
  progress?: (done: number, total: number) => void
}

const NO_JOURNAL = { record: () => undefined, close: () => undefined } as unknown as Journal

export async function deploy(lab: Lab, o: DeployOpts = {}): Promise<DeployResult> {
  await preflight(lab)
  let result: DeployResult = 'created'
  const prev = opMode.dryRun ? undefined : readLab(lab.name)
  if (prev) {
    if (prev.meta.complete && prev.meta.hash === lab.hash && (await whole(prev.created)))
      return 'unchanged'
    if (opMode.explain) opMode.write(`# lab ${lab.name} changed (or was interrupted): rebuild it`)
    await undo(prev.created, lab.name)
    forget(lab.name)
    result = 'rebuilt'
  }
  const steps = await planFor(lab)
  const meta = { name: lab.name, file: path.resolve(lab.file), hash: lab.hash, complete: false }
  const journal = opMode.dryRun ? NO_JOURNAL : begin(meta, lab.text)
  try {
    await runSteps(steps, { journal, ...(o.progress ? { progress: o.progress } : {}) })
    await waitReady(steps.flatMap((s) => (s.creates ? [s.creates] : [])))
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
  return result
}
