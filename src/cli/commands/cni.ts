/**
 * `nsdn cni ...`: nsdn as a CNI runtime (add, del, check, status, gc of a conflist with any
 * plugins, as cnitool and libcni do), `install` of nsdn's plugins into a CNI bin directory,
 * and the resident `agent` the installed plugins forward to. The CNI code loads only when a
 * cni command runs.
 * @module
 */
import path from 'node:path'
import type { Command } from 'commander'
import { ConfigError } from '../../errors.js'
import { netnsDir } from '../../netns/netns.js'
import { examples, needsRoot } from '../context.js'
import { printJson } from '../output.js'

interface RunOpts {
  ifname: string
  args?: string
  capabilityArgs?: string
  cniPath?: string
  cacheDir?: string
}

function parseArgs(text: string | undefined): [string, string][] {
  return (text ?? '')
    .split(';')
    .filter(Boolean)
    .map((kv) => {
      const eq = kv.indexOf('=')
      if (eq <= 0) throw new ConfigError(`"${kv}" is not KEY=VALUE`, '--args')
      return [kv.slice(0, eq), kv.slice(eq + 1)]
    })
}

function parseCaps(text: string | undefined): Record<string, unknown> {
  if (!text) return {}
  let v: unknown
  try {
    v = JSON.parse(text)
  } catch (err) {
    throw new ConfigError(`not JSON: ${(err as Error).message}`, '--capability-args', {
      hint: `e.g. '{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]}'`,
    })
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new ConfigError('must be a JSON object', '--capability-args')
  return v as Record<string, unknown>
}

/** What every call of a network needs: CNI_PATH, the cache, args and capability args. */
async function networkRuntime(o: Partial<RunOpts>) {
  const exec = await import('../../cni/exec.js')
  return {
    exec,
    rt: {
      args: parseArgs(o.args),
      capabilityArgs: parseCaps(o.capabilityArgs),
      path: o.cniPath ? o.cniPath.split(':') : exec.cniPath(),
      cacheDir: o.cacheDir ?? process.env.NSDN_CNI_CACHE_DIR ?? exec.DEFAULT_CACHE_DIR,
    },
  }
}

/** ... and for one attachment: the container, its netns, the interface. */
async function runtime(containerId: string, netns: string, o: RunOpts) {
  const { exec, rt } = await networkRuntime(o)
  return {
    exec,
    rt: {
      ...rt,
      containerId,
      // A bare name is a named netns (/run/netns/NAME); anything with a "/" is a path.
      netns: netns.includes('/') ? netns : path.join(netnsDir(), netns),
      ifname: o.ifname,
    },
  }
}

function withRunOptions(cmd: Command): Command {
  return cmd
    .argument('<conflist>', 'network config list (.conflist) or single config (.conf)')
    .argument('<container-id>', 'the attachment owner (CNI_CONTAINERID)')
    .argument('<netns>', 'netns path (/proc/PID/ns/net, any bind mount) or a named netns')
    .option('--ifname <name>', 'interface name in the container (CNI_IFNAME)', 'eth0')
    .option('--args <K=V;...>', 'CNI_ARGS')
    .option('--capability-args <json>', "values for the plugins' capabilities (runtimeConfig)")
    .option('--cni-path <dirs>', 'plugin directories (default: CNI_PATH, else /opt/cni/bin)')
    .option('--cache-dir <dir>', 'result cache (default: NSDN_CNI_CACHE_DIR, else /var/lib/cni)')
}

export function register(program: Command): void {
  const cni = program
    .command('cni')
    .description("CNI both ways: run conflists like a runtime; install and serve nsdn's plugins")
  examples(
    cni,
    'nsdn cni install /opt/cni/bin',
    'CNI_PATH=/opt/cni/bin nsdn cni add /etc/cni/net.d/10-lab.conflist c1 /run/netns/c1',
    'nsdn cni del /etc/cni/net.d/10-lab.conflist c1 /run/netns/c1',
  )

  // The verbs on one attachment: add prints the Result; del and check print nothing.
  type Exec = Awaited<ReturnType<typeof runtime>>['exec']
  type Rt = Awaited<ReturnType<typeof runtime>>['rt']
  const verbs: [
    string,
    string,
    (e: Exec, list: ReturnType<Exec['loadConfList']>, rt: Rt) => Promise<void>,
  ][] = [
    [
      'add',
      'ADD the conflist for a container; prints the Result (cached like libcni)',
      async (e, list, rt) => printJson(await e.addNetworkList(list, rt)),
    ],
    [
      'del',
      'DEL the conflist in reverse order, with the cached Result',
      (e, list, rt) => e.delNetworkList(list, rt),
    ],
    [
      'check',
      'CHECK the conflist against the cached Result',
      (e, list, rt) => e.checkNetworkList(list, rt),
    ],
  ]
  for (const [verb, description, run] of verbs) {
    const cmd = withRunOptions(cni.command(verb))
      .description(description)
      .action(async (file: string, id: string, netns: string, o: RunOpts) => {
        const { exec, rt } = await runtime(id, netns, o)
        await run(exec, exec.loadConfList(file), rt)
      })
    examples(needsRoot(cmd), `nsdn cni ${verb} lab.conflist c1 /run/netns/c1`)
  }

  const status = cni
    .command('status')
    .argument('<conflist>', 'network config list')
    .option('--cni-path <dirs>', 'plugin directories (default: CNI_PATH, else /opt/cni/bin)')
    .description('STATUS of every plugin of the conflist (cniVersion 1.1.0)')
    .action(async (file: string, o: { cniPath?: string }) => {
      const { exec, rt } = await networkRuntime(o)
      await exec.statusNetworkList(exec.loadConfList(file), rt)
    })
  examples(status, 'nsdn cni status lab.conflist')

  const gc = cni
    .command('gc')
    .argument('<conflist>', 'network config list')
    .argument('[valid...]', 'attachments to keep, as CONTAINER-ID/IFNAME')
    .option('--cni-path <dirs>', 'plugin directories (default: CNI_PATH, else /opt/cni/bin)')
    .option('--cache-dir <dir>', 'result cache (default: NSDN_CNI_CACHE_DIR, else /var/lib/cni)')
    .description('GC: remove every attachment of the network not listed as valid')
    .action(async (file: string, valid: string[], o: { cniPath?: string; cacheDir?: string }) => {
      for (const v of valid)
        if (!/^[^/]+\/[^/]+$/.test(v))
          throw new ConfigError(`"${v}" is not CONTAINER-ID/IFNAME`, 'valid')
      const { exec, rt } = await networkRuntime(o)
      await exec.gcNetworkList(exec.loadConfList(file), rt, new Set(valid))
    })
  examples(needsRoot(gc), 'nsdn cni gc lab.conflist c1/eth0 c2/eth0')

  const install = cni
    .command('install')
    .argument('<dir>', 'CNI bin directory, e.g. /opt/cni/bin')
    .option('--socket <path>', "the agent's socket the plugins forward to")
    .option('--node <path>', 'node as the host runs it (default: this node)')
    .option('--main <path>', 'dist/src/cni/fallback.js as the host sees it (default: this one)')
    .description("install nsdn's plugins (nsdn-bridge, -ovs, -vlan, -routed, -ipam, ...) into DIR")
    .action(async (dir: string, o: { socket?: string; node?: string; main?: string }) => {
      const { installPlugins } = await import('../../cni/install.js')
      printJson(installPlugins(dir, o))
    })
  examples(
    install,
    'nsdn cni install /opt/cni/bin',
    '# from a container: the paths node and nsdn have on the host',
    'nsdn cni install /host/opt/cni/bin --node /opt/nsdn/node --main /opt/nsdn/app/dist/src/cni/fallback.js',
  )

  const agent = cni
    .command('agent')
    .option(
      '--socket <path>',
      'unix socket to listen on (default: NSDN_CNI_SOCKET, else /run/nsdn/cni.sock)',
    )
    .description("serve the installed plugins' calls from a resident process (fast path)")
    .action(async (o: { socket?: string }) => {
      const { runAgent } = await import('../../cni/agent.js')
      await runAgent(o.socket)
    })
  examples(needsRoot(agent), 'nsdn cni agent &')
}
