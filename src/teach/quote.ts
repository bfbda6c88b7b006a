/** Shell-quote one word so that a printed command can be pasted into a root shell. */
export function quote(word: string): string {
  if (word !== '' && /^[A-Za-z0-9_./:=@%+,-]+$/.test(word)) return word
  return `'${word.replace(/'/g, `'\\''`)}'`
}

export function quoteArgv(argv: readonly string[]): string {
  return argv.map(quote).join(' ')
}
