/**
 * Results on stdout: aligned tables for people, JSON for programs (--json). Nothing else
 * writes to stdout; logs, --explain lines and errors go to stderr.
 * @module
 */

export type Cell = string | number | undefined

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n')
}

/** Columns padded to their widest cell; a missing value shows as "-". */
function formatTable(head: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const text = [head, ...rows].map((r) => head.map((_, i) => String(r[i] ?? '-')))
  const widths = head.map((_, i) => Math.max(...text.map((r) => r[i]?.length ?? 0)))
  return text
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')
}

export function printTable(head: readonly string[], rows: readonly (readonly Cell[])[]): void {
  process.stdout.write(formatTable(head, rows) + '\n')
}
