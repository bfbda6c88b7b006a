/**
 * A terminal in a lab node: a real pty running the user's login shell inside a network
 * namespace (or a container), relayed by nsdn-init.
 * @module
 */

export type TerminalTarget = { ns: string } | { container: string }

export interface Terminal {
  write(data: Buffer | string): void
  resize(cols: number, rows: number): void
  onData(fn: (data: Buffer) => void): void
  onExit(fn: (code: number | null) => void): void
  kill(): void
}

export function openTerminal(
  target: TerminalTarget,
  size: { cols: number; rows: number },
): Terminal {
  void target
  void size
  throw new Error('not yet')
}
