/**
 * What the page can do to a lab: set or clear a link's rate limit, run its checks, explain it.
 * @module
 */
import type { CheckResult } from '../lab/verify.js'

/** Rate "10mbit" on both ends of the link (as `rate:` in a lab file does); null removes it. */
export function setLinkRate(labName: string, linkId: string, rate: string | null): Promise<void> {
  void labName
  void linkId
  void rate
  throw new Error('not yet')
}

/** `nsdn lab verify NAME`: every check of the lab, run now. */
export function runVerify(labName: string): Promise<CheckResult[]> {
  void labName
  throw new Error('not yet')
}

/** `nsdn lab explain NAME`: the script that builds the lab. */
export function explainLab(labName: string): Promise<string> {
  void labName
  throw new Error('not yet')
}
