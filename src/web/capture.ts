/**
 * A packet capture of one interface of a namespace, as a pcap stream (what Wireshark opens):
 * tcpdump run inside the namespace (setns, then spawn: spawnInNetns), its file on stdout,
 * flushed packet by packet (-U). It ends after `seconds` or `maxPackets`, whichever first, or
 * when the reader destroys the stream.
 * @module
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { PassThrough, type Readable } from 'node:stream'
import { NsdnError } from '../errors.js'
import { NetNs, spawnInNetns } from '../netns/netns.js'
import { parseIntIn, validIfName } from '../validate.js'

export interface CaptureOpts {
  /** Stop after this long (1 to 3600). */
  seconds: number
  /** Stop after this many packets (1 to 1,000,000). */
  maxPackets: number
}

/** After SIGINT, tcpdump has this long to write its last packets and end. */
const KILL_AFTER_MS = 2000

/**
 * Capture on ifname in the namespace ns ('' = nsdn's own). Bad arguments throw (E_CONFIG, or
 * E_NETNS for a namespace that is not there); tcpdump's own failures (no such device, not
 * installed) come as the stream's error.
 */
export function capture(ns: string, ifname: string, o: CaptureOpts): Readable {
  validIfName(ifname)
  const seconds = parseIntIn(o.seconds, 1, 3600, 'capture seconds')
  const maxPackets = parseIntIn(o.maxPackets, 1, 1_000_000, 'capture packets')
  const argv = ['tcpdump', '-U', '-n', '-w', '-', '-c', String(maxPackets), '-i', ifname]
  const stdio = ['ignore', 'pipe', 'pipe'] as const
  let child: ChildProcess
  if (ns === '') child = spawn(argv[0]!, argv.slice(1), { stdio: [...stdio] })
  else {
    const h = NetNs.open(ns)
    try {
      child = spawnInNetns(h, argv, { stdio: [...stdio] })
    } finally {
      h.close()
    }
  }
  const out = new PassThrough()
  let stderr = ''
  let wrote = false
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)))
  child.stdout!.on('data', () => (wrote = true))
  // ended here, once tcpdump's status says whether it was a capture or a failure
  child.stdout!.pipe(out, { end: false })
  let ended = false
  const stop = (): void => {
    if (ended) return
    child.kill('SIGINT')
    setTimeout(() => {
      if (!ended) child.kill('SIGKILL')
    }, KILL_AFTER_MS).unref()
  }
  const timer = setTimeout(stop, seconds * 1000)
  timer.unref()
  child.on('error', (err: NodeJS.ErrnoException) => {
    ended = true
    clearTimeout(timer)
    out.destroy(
      err.code === 'ENOENT'
        ? new NsdnError('E_UNAVAILABLE', 'tcpdump is not installed', {
            hint: 'apt-get install tcpdump',
          })
        : new NsdnError('E_EXEC', `cannot run tcpdump: ${err.message}`, { cause: err }),
    )
  })
  child.on('close', (code, sig) => {
    ended = true
    clearTimeout(timer)
    // -c and our SIGINT both end tcpdump with status 0, after the file header at least
    if (wrote && (code === 0 || sig === 'SIGINT')) return void out.end()
    const why = stderr
      .split('\n')
      .filter((l) => l && !/^(listening on|\d+ packets)/.test(l))
      .at(-1)
    out.destroy(
      new NsdnError('E_EXEC', `capture on ${ifname}: ${why ?? `tcpdump ended (${code ?? sig})`}`, {
        hint: `"nsdn${ns ? ` -n ${ns}` : ''} link list" shows the interfaces there`,
      }),
    )
  })
  // the reader went away (a download cancelled): stop tcpdump
  out.on('close', stop)
  return out
}
