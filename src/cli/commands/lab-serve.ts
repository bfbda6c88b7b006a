/**
 * `nsdn lab serve`: the live web view of the deployed labs (src/web/server.ts, loaded only
 * when the command runs). Serves until SIGINT or SIGTERM, then closes its shells and captures.
 * @module
 */
import fs from 'node:fs'
import type { Command } from 'commander'
import { NsdnError } from '../../errors.js'
import { examples, needsRoot } from '../context.js'

const out = (line: string): void => void process.stdout.write(line + '\n')

/** The lab a NAME or FILE argument means; it must be deployed. */
async function deployedLab(ref: string): Promise<string> {
  let name = ref
  if (ref.includes('/') || /\.ya?ml$/.test(ref)) {
    if (!fs.existsSync(ref))
      throw new NsdnError('E_NOT_FOUND', `no lab file ${ref}`, { hint: 'give the lab name' })
    name = (await import('../../lab/load.js')).loadFile(ref).raw.name
  }
  if (!(await import('../../lab/state.js')).readLab(name))
    throw new NsdnError('E_NOT_FOUND', `no lab "${name}" is deployed`, {
      hint: ref === name ? '"nsdn lab list" shows the deployed labs' : `nsdn lab deploy ${ref}`,
    })
  return name
}

function port(text: string): number {
  const n = Number(text)
  if (!/^\d+$/.test(text) || n > 65535)
    throw new NsdnError('E_USAGE', `invalid port "${text}"`, {
      hint: 'a number 0-65535 (0: any free port)',
    })
  return n
}

export function register(lab: Command): void {
  const serve = lab
    .command('serve')
    .description(
      'a live web view of the labs (topology, state, traffic, a shell per node), on a local port with an access token',
    )
    .argument(
      '[lab]',
      'the lab (name or file) whose page the printed URL opens; the list otherwise',
    )
    .option('--port <port>', 'TCP port (0: any free one)', '8280')
    .option(
      '--listen <addr>',
      'address to listen on; only 127.0.0.1 keeps it to this machine',
      '127.0.0.1',
    )
    .action(async (ref: string | undefined, o: { port: string; listen: string }) => {
      const name = ref === undefined ? undefined : await deployedLab(ref)
      const { parseIp } = await import('../../validate.js')
      parseIp(o.listen, '--listen')
      const { serve: start } = await import('../../web/server.js')
      const s = await start({
        port: port(o.port),
        listen: o.listen,
        ...(name ? { lab: name } : {}),
      })
      out(`nsdn lab serve: open ${s.url}`)
      out('(the token in the URL is the key to root shells in the labs: keep it to yourself)')
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve)
        process.once('SIGTERM', resolve)
      })
      await s.close()
      out('nsdn lab serve: stopped')
    })
  examples(
    needsRoot(serve),
    'nsdn lab serve vlan --port 8280 &',
    'nsdn lab serve --port 0 --listen 127.0.0.1 &',
  )
}
