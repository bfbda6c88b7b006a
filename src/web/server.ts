/**
 * The web server of `nsdn lab serve`: one live page per deployed lab, and a lab list.
 *
 * Whoever reaches the port gets root shells in the lab's namespaces, so every request needs
 * the access token (the URL printed carries it once; the page then holds it as a cookie), a
 * websocket or a POST must come from the page this server served (Origin), and a server on
 * loopback answers only loopback Host names (a DNS-rebound name is refused). Every parameter
 * is checked against the lab before use; nothing the page sends reaches a shell as text
 * (terminals get keystrokes, every other action takes typed values).
 * @module
 */
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { Readable } from 'node:stream'
import websocket from '@fastify/websocket'
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify'
import type { WebSocket } from 'ws'
import { ERROR_TABLE, NsdnError } from '../errors.js'
import { parseRate } from '../lab/resolve.js'
import { listLabs, readLab } from '../lab/state.js'
import { explainLab, runVerify, setLinkRate } from './actions.js'
import { capture } from './capture.js'
import { type LiveLab, type LiveTopo, openLive } from './live.js'
import { type Terminal, openTerminal } from './terminal.js'
import { recordedLab, topoOf as topo } from './topo.js'

export interface ServeOpts {
  /** 0 picks a free port. */
  port: number
  /** Address to listen on (default 127.0.0.1). */
  listen?: string
  /** The lab whose page the printed URL opens (the list otherwise). */
  lab?: string
}

export interface Server {
  /** The URL to open, token included. */
  url: string
  /** Origin of the server (http://HOST:PORT), what the page's requests must carry. */
  origin: string
  port: number
  token: string
  /** Stop serving: terminals killed, captures stopped, live views closed. */
  close(): Promise<void>
}

const PAGE_DIR = path.resolve(__dirname, '../../../src/web/page')

/** The files the page loads: its own, and the browser builds of its libraries. */
const FILES: Record<string, { file: string; type: string }> = {
  '/static/app.js': { file: path.join(PAGE_DIR, 'app.js'), type: 'text/javascript' },
  '/static/style.css': { file: path.join(PAGE_DIR, 'style.css'), type: 'text/css' },
  '/vendor/elk.js': { file: require.resolve('elkjs/lib/elk.bundled.js'), type: 'text/javascript' },
  '/vendor/xterm.js': {
    file: require.resolve('@xterm/xterm/lib/xterm.js'),
    type: 'text/javascript',
  },
  '/vendor/xterm.css': { file: require.resolve('@xterm/xterm/css/xterm.css'), type: 'text/css' },
  '/vendor/addon-fit.js': {
    file: require.resolve('@xterm/addon-fit/lib/addon-fit.js'),
    type: 'text/javascript',
  },
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]'])
const isLoopback = (addr: string): boolean => addr === '::1' || addr.startsWith('127.')

/** How long a lab's live view stays open after its last user (a reload reuses it). */
const LINGER_MS = 5000

/** One live view per lab, shared by its pages, closed a moment after the last one leaves. */
class Lives {
  private readonly open = new Map<
    string,
    { live: Promise<LiveLab>; users: number; timer?: NodeJS.Timeout }
  >()

  acquire(lab: string): Promise<LiveLab> {
    let e = this.open.get(lab)
    if (!e) {
      const live = openLive(lab)
      e = { live, users: 0 }
      this.open.set(lab, e)
      live.catch(() => this.open.delete(lab))
    }
    clearTimeout(e.timer)
    e.users++
    return e.live
  }

  release(lab: string): void {
    const e = this.open.get(lab)
    if (!e || --e.users > 0) return
    e.timer = setTimeout(() => {
      this.open.delete(lab)
      void e.live.then((l) => l.close()).catch(() => undefined)
    }, LINGER_MS)
  }

  async use<T>(lab: string, fn: (live: LiveLab) => T | Promise<T>): Promise<T> {
    try {
      return await fn(await this.acquire(lab))
    } finally {
      this.release(lab)
    }
  }

  async closeAll(): Promise<void> {
    const all = [...this.open.values()]
    this.open.clear()
    for (const e of all) clearTimeout(e.timer)
    await Promise.allSettled(all.map(async (e) => (await e.live).close()))
  }
}

const STATUS: Partial<Record<keyof typeof ERROR_TABLE, number>> = {
  E_CONFIG: 400,
  E_USAGE: 400,
  E_NOT_FOUND: 404,
  E_PERM: 403,
  E_TRY_AGAIN: 409,
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/

/** A deployed lab's name, or E_NOT_FOUND. */
function deployed(name: string): string {
  if (!NAME_RE.test(name) || !listLabs().includes(name))
    throw new NsdnError('E_NOT_FOUND', `no lab "${name}" is deployed`, {
      hint: '"nsdn lab list" shows the deployed labs',
    })
  return name
}

const safeFileName = (s: string): string => s.replace(/[^A-Za-z0-9_.-]/g, '_')

/** An integer query/body value within [min, max], or the default. */
function intParam(v: unknown, name: string, min: number, max: number, dflt: number): number {
  if (v === undefined) return dflt
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : NaN
  if (!Number.isInteger(n) || n < min || n > max)
    throw new NsdnError('E_USAGE', `${name} must be an integer from ${min} to ${max}`)
  return n
}

function linkOf(topo: LiveTopo, id: unknown): LiveTopo['links'][number] {
  const l = topo.links.find((k) => k.id === id)
  if (!l)
    throw new NsdnError('E_NOT_FOUND', `lab ${topo.name} has no link "${String(id)}"`, {
      hint: `its links: ${topo.links.map((k) => k.id).join(', ')}`,
    })
  return l
}

function nodeOf(topo: LiveTopo, name: string): LiveTopo['nodes'][number] {
  const n = topo.nodes.find((x) => x.name === name)
  if (!n)
    throw new NsdnError('E_NOT_FOUND', `lab ${topo.name} has no node "${name}" with a shell`, {
      hint: `its nodes: ${topo.nodes.map((x) => x.name).join(', ')}`,
    })
  return n
}

const cookieName = (port: number): string => `nsdn_token_${port}`

function cookie(req: FastifyRequest, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=')
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim()
  }
  return undefined
}

const sameToken = (a: string, b: string): boolean =>
  a.length === b.length && crypto.timingSafeEqual(Buffer.from(a), Buffer.from(b))

/** Start the server; resolves once it listens. */
export async function serve(o: ServeOpts): Promise<Server> {
  const listen = o.listen ?? '127.0.0.1'
  const token = crypto.randomBytes(24).toString('hex')
  const lives = new Lives()
  const terminals = new Set<Terminal>()
  const captures = new Set<Readable>()
  const verifying = new Map<string, Promise<unknown>>()
  let port = 0

  // removeAdditional off: an unknown field is refused, not silently dropped
  const app = Fastify({
    logger: false,
    bodyLimit: 16 * 1024,
    ajv: { customOptions: { removeAdditional: false } },
  })
  await app.register(websocket, { options: { maxPayload: 64 * 1024 } })

  const refuse = (reply: FastifyReply, why: string): FastifyReply =>
    reply.code(403).type('text/plain; charset=utf-8').send(`nsdn lab serve: refused: ${why}\n`)

  app.addHook('onRequest', async (req, reply) => {
    const host = req.headers.host ?? ''
    const hostname = host.replace(/:\d+$/, '')
    if (isLoopback(listen) && (!LOOPBACK.has(hostname) || host !== `${hostname}:${port}`))
      return refuse(reply, `Host "${host}" is not this server (it answers on 127.0.0.1:${port})`)
    const given =
      (req.query as Record<string, unknown>).token ??
      req.headers['x-nsdn-token'] ??
      cookie(req, cookieName(port))
    if (typeof given !== 'string' || !sameToken(given, token))
      return refuse(
        reply,
        'no valid access token: open the URL that "nsdn lab serve" printed (it ends in ?token=...)',
      )
    // A websocket, a POST, or anything a browser sends with an Origin: only from our own page.
    const origin = req.headers.origin
    const mustHaveOrigin =
      (req.method !== 'GET' && req.method !== 'HEAD') || req.headers.upgrade !== undefined
    if ((origin !== undefined || mustHaveOrigin) && origin !== `http://${host}`)
      return refuse(
        reply,
        `Origin ${origin ?? '(none)'} is not this server's page (http://${host}); ` +
          'websockets and POSTs come only from the page it served',
      )
    reply.header('cache-control', 'no-store')
    reply.header('referrer-policy', 'no-referrer')
    reply.header('x-frame-options', 'DENY')
    return undefined
  })

  app.setErrorHandler((err, _req, reply) => {
    if (err instanceof NsdnError) {
      const status = STATUS[err.code] ?? 500
      return reply
        .code(status)
        .send({ error: { code: err.code, message: err.message, hint: err.hint } })
    }
    const e = err as { statusCode?: number; message?: string }
    const status = e.statusCode && e.statusCode < 500 ? e.statusCode : 500
    return reply.code(status).send({ error: { code: 'E_INTERNAL', message: String(e.message) } })
  })

  /** The page: the URL's token becomes a cookie, and the URL loses it (history, screenshots). */
  const page = (req: FastifyRequest, reply: FastifyReply): FastifyReply => {
    const q = req.query as Record<string, unknown>
    if (typeof q.token === 'string') {
      reply.header('set-cookie', `${cookieName(port)}=${token}; Path=/; HttpOnly; SameSite=Strict`)
      return reply.redirect(req.url.split('?')[0]!, 303)
    }
    reply.header(
      'content-security-policy',
      "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
        "frame-ancestors 'none'",
    )
    return reply
      .type('text/html; charset=utf-8')
      .send(fs.createReadStream(path.join(PAGE_DIR, 'index.html')))
  }
  app.get('/', page)
  app.get<{ Params: { name: string } }>('/lab/:name', (req, reply) => {
    deployed(req.params.name)
    return page(req, reply)
  })
  for (const [url, f] of Object.entries(FILES))
    app.get(url, (_req, reply) => reply.type(f.type).send(fs.createReadStream(f.file)))

  app.get('/api/labs', () =>
    listLabs().flatMap((name) => {
      const r = readLab(name)
      return r
        ? [{ name, file: r.meta.file, state: r.meta.complete ? 'deployed' : 'incomplete' }]
        : []
    }),
  )

  type LabReq = FastifyRequest<{ Params: { name: string; node?: string } }>
  /** The lab as its record says (no live view needed to check a parameter). */
  const topoOf = async (name: string): Promise<LiveTopo> => topo(recordedLab(deployed(name)))

  app.get('/api/lab/:name', (req: LabReq) =>
    lives.use(deployed(req.params.name), (l) => l.snapshot()),
  )

  app.get(
    '/api/lab/:name/live',
    { websocket: true, preHandler: async (req: LabReq) => void deployed(req.params.name) },
    (socket: WebSocket, req: LabReq) => {
      const name = req.params.name
      let off: (() => void) | undefined
      let gone = false
      const send = (m: unknown): void => {
        if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(m))
      }
      // the recorded topology first: the page lays it out while the live view opens (seconds
      // on a big lab), then colours it from the snapshot
      send({ type: 'topo', topo: topo(recordedLab(name)) })
      const live = lives.acquire(name)
      socket.on('close', () => {
        gone = true
        off?.()
        lives.release(name)
      })
      live.then(
        (l) => {
          if (gone) return
          send({ type: 'snapshot', ...l.snapshot() })
          off = l.onChange((changes) => send({ type: 'batch', changes }))
        },
        (e: Error) => {
          send({ type: 'error', message: e.message })
          socket.close(1011, 'live view failed')
        },
      )
    },
  )

  app.get(
    '/api/lab/:name/term/:node',
    {
      websocket: true,
      preHandler: async (req: LabReq) =>
        void nodeOf(await topoOf(req.params.name), req.params.node!),
    },
    (socket: WebSocket, req: LabReq) => {
      const q = req.query as Record<string, unknown>
      const size = {
        cols: intParam(q.cols, 'cols', 2, 1000, 80),
        rows: intParam(q.rows, 'rows', 2, 1000, 24),
      }
      void topoOf(req.params.name).then(
        (topo) => {
          if (socket.readyState !== socket.OPEN) return
          const n = nodeOf(topo, req.params.node!)
          let term: Terminal
          try {
            // a container node's shell is the container's own (named like its netns)
            term = openTerminal(n.kind === 'container' ? { container: n.ns } : { ns: n.ns }, size)
          } catch (e) {
            socket.send(JSON.stringify({ type: 'exit', code: null, message: (e as Error).message }))
            return socket.close()
          }
          terminals.add(term)
          term.onData((d) => {
            if (socket.readyState === socket.OPEN) socket.send(d)
          })
          term.onExit((code) => {
            terminals.delete(term)
            if (socket.readyState !== socket.OPEN) return
            socket.send(JSON.stringify({ type: 'exit', code }))
            socket.close()
          })
          // Keystrokes as binary frames, control messages as JSON text frames.
          socket.on('message', (data: Buffer, binary: boolean) => {
            if (binary) return term.write(data)
            try {
              const m = JSON.parse(data.toString()) as {
                type?: string
                cols?: unknown
                rows?: unknown
              }
              if (m.type === 'resize')
                term.resize(
                  intParam(m.cols, 'cols', 2, 1000, size.cols),
                  intParam(m.rows, 'rows', 2, 1000, size.rows),
                )
            } catch {
              // a malformed control message changes nothing
            }
          })
          socket.on('close', () => {
            terminals.delete(term)
            term.kill()
          })
        },
        () => socket.close(1011, 'lab gone'),
      )
    },
  )

  app.get('/api/lab/:name/capture', async (req: LabReq, reply) => {
    const q = req.query as Record<string, unknown>
    const topo = await topoOf(req.params.name)
    const link = linkOf(topo, q.link)
    if (q.end !== undefined && q.end !== 'a' && q.end !== 'b')
      throw new NsdnError('E_USAGE', 'end must be a or b (the link end to capture on)')
    const end = link[q.end === 'b' ? 'b' : 'a']
    const seconds = intParam(q.seconds, 'seconds', 1, 300, 10)
    const packets = intParam(q.packets, 'packets', 1, 1_000_000, 10_000)
    const stream = capture(end.ns, end.ifname, { seconds, maxPackets: packets })
    captures.add(stream)
    stream.once('close', () => captures.delete(stream))
    // the browser went away: stop capturing
    reply.raw.once('close', () => stream.destroy())
    const file = safeFileName(`${topo.name}-${end.node}-${end.ifname}.pcap`)
    return reply
      .type('application/vnd.tcpdump.pcap')
      .header('content-disposition', `attachment; filename="${file}"`)
      .send(stream)
  })

  app.post(
    '/api/lab/:name/rate',
    {
      schema: {
        body: {
          type: 'object',
          required: ['link', 'rate'],
          additionalProperties: false,
          properties: {
            link: { type: 'string', maxLength: 64 },
            rate: { type: ['string', 'null'], maxLength: 32 },
          },
        },
      },
    },
    async (req: LabReq) => {
      const b = req.body as { link: string; rate: string | null }
      const name = deployed(req.params.name)
      const link = linkOf(await topoOf(name), b.link)
      if (b.rate !== null) parseRate(b.rate, 'rate')
      await setLinkRate(name, link.id, b.rate)
      return { link: link.id, rate: b.rate }
    },
  )

  app.post('/api/lab/:name/verify', async (req: LabReq) => {
    const name = deployed(req.params.name)
    const topo = await topoOf(name)
    // one run of a lab's checks at a time: a second click waits for the first run's results
    let run = verifying.get(name) as ReturnType<typeof runVerify> | undefined
    if (!run) {
      run = runVerify(name)
      verifying.set(name, run)
      void run.finally(() => verifying.delete(name)).catch(() => undefined)
    }
    const results = await run
    return results.map((r, i) => ({
      id: topo.checks[i]?.id ?? String(i),
      ok: r.ok,
      detail: r.detail,
    }))
  })

  app.get('/api/lab/:name/explain', async (req: LabReq, reply) =>
    reply.type('text/plain; charset=utf-8').send(await explainLab(deployed(req.params.name))),
  )

  try {
    await app.listen({ host: listen, port: o.port })
  } catch (e) {
    await app.close()
    const code = (e as NodeJS.ErrnoException).code
    if (code === 'EADDRINUSE')
      throw new NsdnError('E_UNAVAILABLE', `port ${o.port} on ${listen} is in use`, {
        hint: 'choose another with --port, or --port 0 for any free one',
      })
    if (code === 'EADDRNOTAVAIL')
      throw new NsdnError('E_CONFIG', `${listen} is not an address of this machine`, {
        hint: 'listen on 127.0.0.1, or on one of the addresses "ip addr" shows',
      })
    throw e
  }
  const addr = app.server.address()
  port = typeof addr === 'object' && addr ? addr.port : o.port
  // a server on every address is reached by the machine's name (browsers refuse 0.0.0.0)
  const host =
    listen === '0.0.0.0' || listen === '::'
      ? os.hostname()
      : listen.includes(':')
        ? `[${listen}]`
        : listen
  const origin = `http://${host}:${port}`
  const where = o.lab ? `/lab/${encodeURIComponent(o.lab)}` : '/'
  return {
    url: `${origin}${where}?token=${token}`,
    origin,
    port,
    token,
    async close() {
      for (const t of terminals) t.kill()
      for (const c of captures) c.destroy()
      await lives.closeAll()
      await app.close()
    },
  }
}
