/**
 * Undo steps for a multi-step add: each created object pushes how to remove it; on failure
 * they run in reverse. A cleanup failure is logged and never hides the original error.
 * @module
 */
import { NsdnError } from '../errors.js'
import { logger } from '../log.js'

const log = logger('rollback')

export class Rollback {
  private readonly steps: { what: string; undo: () => Promise<unknown> | unknown }[] = []

  push(what: string, undo: () => Promise<unknown> | unknown): void {
    this.steps.push({ what, undo })
  }

  /** Undo everything, newest first. */
  async run(): Promise<void> {
    for (const s of this.steps.reverse()) {
      try {
        await s.undo()
      } catch (err) {
        log.warn({ step: s.what, err: String(err) }, 'rollback step failed')
      }
    }
    this.steps.length = 0
  }

  /** Run fn; on any error undo what it created and rethrow. */
  static async guard<T>(fn: (rb: Rollback) => Promise<T>): Promise<T> {
    const rb = new Rollback()
    try {
      return await fn(rb)
    } catch (err) {
      await rb.run()
      throw err
    }
  }
}

/**
 * Failure injection for rollback tests: NSDN_FAIL_AFTER=<step> makes `failpoint(step)` throw
 * right after that step of an add.
 */
export function failpoint(step: string): void {
  if (process.env.NSDN_FAIL_AFTER === step)
    throw new NsdnError('E_INTERNAL', `injected failure after step "${step}"`)
}
