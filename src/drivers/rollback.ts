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

/** An add stopped at a step boundary because the process was told to stop (SIGINT, SIGTERM). */
export class InterruptedError extends NsdnError {
  constructor(
    readonly signal: NodeJS.Signals,
    step: string,
  ) {
    super('E_TRY_AGAIN', `interrupted by ${signal} after step "${step}": rolled back`, {
      hint: 'run it again',
    })
  }
}

let interruptedBy: NodeJS.Signals | undefined

/**
 * Ask every add in progress to stop at its next step boundary and roll back (a front calls it
 * from its signal handler; the add then rejects with {@link InterruptedError}).
 */
export function interrupt(signal: NodeJS.Signals): void {
  interruptedBy = signal
}

/**
 * A step boundary of an add. Throws {@link InterruptedError} after {@link interrupt}; and, for
 * rollback tests, NSDN_FAIL_AFTER=<step> makes it throw right after that step.
 */
export function failpoint(step: string): void {
  if (interruptedBy) throw new InterruptedError(interruptedBy, step)
  if (process.env.NSDN_FAIL_AFTER === step)
    throw new NsdnError('E_INTERNAL', `injected failure after step "${step}"`)
}
