import { sandboxThisFile } from '../helpers/sandbox.js'
sandboxThisFile()

/**
 * `nsdn lab serve`, from outside: the access token and the Origin rule over plain HTTP and
 * websockets, every parameter checked, and the page in a real browser (Debian's chromium driven
 * by playwright-core): every node drawn, a link set down by hand with `ip` turns red, a command
 * typed in a node's shell runs in that node's namespace, a capture downloads as pcap, the verify
 * button colours the checks; and the 250-host star served by the CLI, with its layout time and
 * the server's memory reported.
 */
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import WebSocket from 'ws'
import { chromium, type Browser, type Page } from 'playwright-core'
import { Rtnl } from '../../src/netlink/rtnl.js'
import { deploy } from '../../src/lab/deploy.js'
import { destroy } from '../../src/lab/destroy.js'
import { loadFile } from '../../src/lab/load.js'
import { resolve } from '../../src/lab/resolve.js'
import type { LiveSnapshot } from '../../src/web/live.js'
import { type Server, serve } from '../../src/web/server.js'
import { eventually, netnsNames, strayLinks } from '../helpers/kernel.js'

const REPO = path.resolve(__dirname, '../../..')
const MAIN = path.join(REPO, 'dist/src/cli/main.js')
const SCENARIOS = path.join(REPO, 'scenarios')
const CHROMIUM = '/usr/bin/chromium'
/** Screenshots go to $NSDN_WEB_SHOTS (docs/img for the README), else to a directory we remove. */
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'nsdn-t-web-'))
const SHOTS = process.env.NSDN_WEB_SHOTS ?? work

let server: Server
let browser: Browser | undefined
let noBrowser = ''

const deployed: string[] = []
async function up(file: string): Promise<string> {
  const lab = resolve(loadFile(path.join(SCENARIOS, file)))
  await deploy(lab)
  deployed.push(lab.name)
  return lab.name
}

before(async () => {
  // the sandbox's loopback starts down: the server and the browser talk over it
  spawnSync('ip', ['link', 'set', 'lo', 'up'])
  await up('05-routers.yaml')
  await up('02-ovs-vlan.yaml')
  server = await serve({ port: 0 })
  try {
    if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing (apt install chromium)`)
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })
  } catch (e) {
    noBrowser = `chromium cannot run here: ${(e as Error).message.split('\n')[0]}`
  }
})

after(async () => {
  await browser?.close()
  await server?.close()
  for (const name of deployed.reverse()) await destroy(name)
  Rtnl.closeAll()
  fs.rmSync(work, { recursive: true, force: true })
  assert.ok(await eventually(() => strayLinks().length === 0), `links left: ${strayLinks()}`)
  assert.deepEqual(netnsNames(), [])
})

interface Res {
  status: number
  headers: http.IncomingHttpHeaders
  body: Buffer
}

/** A raw HTTP request to the server (any Host, Origin, token) and its whole answer. */
function req(
  method: string,
  url: string,
  o: { headers?: Record<string, string>; body?: unknown } = {},
): Promise<Res> {
  return new Promise((res, rej) => {
    const r = http.request(`${server.origin}${url}`, { method, headers: o.headers }, (m) => {
      const chunks: Buffer[] = []
      m.on('data', (c: Buffer) => chunks.push(c))
      m.on('end', () =>
        res({ status: m.statusCode!, headers: m.headers, body: Buffer.concat(chunks) }),
      )
    })
    r.on('error', rej)
    if (o.body !== undefined) {
      r.setHeader('content-type', 'application/json')
      r.end(JSON.stringify(o.body))
    } else r.end()
  })
}
/** As the page would: the token, and its own Origin. */
const page = (method: string, url: string, body?: unknown): Promise<Res> =>
  req(method, url, { headers: { 'x-nsdn-token': server.token, origin: server.origin }, body })
const json = <T>(r: Res): T => JSON.parse(r.body.toString()) as T

/** Open a websocket; the HTTP status it was refused with, or 101 when it opened. */
function wsStatus(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((res) => {
    const ws = new WebSocket(`ws://${server.origin.slice(7)}${url}`, { headers })
    ws.on('open', () => {
      ws.close()
      res(101)
    })
    ws.on('unexpected-response', (_q, m) => {
      res(m.statusCode!)
      ws.terminate()
    })
    ws.on('error', () => undefined)
  })
}

/** Whether tc sees a tbf qdisc on the device. */
function hasTbf(ns: string, dev: string): boolean {
  const r = spawnSync('ip', ['netns', 'exec', ns, 'tc', '-j', 'qdisc', 'show', 'dev', dev], {
    encoding: 'utf8',
  })
  return (JSON.parse(r.stdout) as { kind: string }[]).some((q) => q.kind === 'tbf')
}

async function snapshotOf(lab: string): Promise<LiveSnapshot> {
  const r = await page('GET', `/api/lab/${lab}`)
  assert.equal(r.status, 200, r.body.toString())
  return json<LiveSnapshot>(r)
}

test('the URL printed carries a random token and points at 127.0.0.1', () => {
  assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]{48}$/)
  assert.equal(server.origin, `http://127.0.0.1:${server.port}`)
})

test('a server on every address prints the machine name; it still wants the token', async () => {
  const all = await serve({ port: 0, listen: '0.0.0.0' })
  try {
    assert.match(all.url, new RegExp(`^http://${os.hostname()}:${all.port}/\\?token=[0-9a-f]{48}$`))
    const r = await new Promise<number>((res, rej) =>
      http.get(`http://127.0.0.1:${all.port}/api/labs`, (m) => res(m.statusCode!)).on('error', rej),
    )
    assert.equal(r, 403)
  } finally {
    await all.close()
  }
})

test('no token, a wrong one, or a foreign Host: 403 with the reason in plain text', async () => {
  for (const url of ['/', '/api/labs', '/lab/routers', '/static/app.js', '/api/lab/routers']) {
    const r = await req('GET', url)
    assert.equal(r.status, 403, url)
    assert.match(
      r.body.toString(),
      /no valid access token: open the URL that "nsdn lab serve" printed/,
    )
  }
  const wrong = await req('GET', `/api/labs?token=${'0'.repeat(48)}`)
  assert.equal(wrong.status, 403)
  // a DNS name rebound to 127.0.0.1 is not this server, token or not
  const rebound = await req('GET', '/api/labs', {
    headers: { host: `evil.example:${server.port}`, 'x-nsdn-token': server.token },
  })
  assert.equal(rebound.status, 403)
  assert.match(rebound.body.toString(), /Host "evil\.example:\d+" is not this server/)
})

test('the token in the URL becomes a cookie, and leaves the URL', async () => {
  const r = await req('GET', `/lab/routers?token=${server.token}`)
  assert.equal(r.status, 303)
  assert.equal(r.headers.location, '/lab/routers')
  const cookie = String(r.headers['set-cookie']).split(';')[0]!
  assert.match(String(r.headers['set-cookie']), /HttpOnly; SameSite=Strict/)
  const p = await req('GET', '/lab/routers', { headers: { cookie } })
  assert.equal(p.status, 200)
  assert.match(p.body.toString(), /<script src="\/static\/app\.js"/)
  const labs = json<{ name: string }[]>(await req('GET', '/api/labs', { headers: { cookie } }))
  assert.deepEqual(labs.map((l) => l.name).sort(), ['routers', 'vlan'])
})

test('POSTs and websockets come only from the page: another Origin, or none, is refused', async () => {
  const token = { 'x-nsdn-token': server.token }
  const evil = await req('POST', '/api/lab/routers/verify', {
    headers: { ...token, origin: 'http://evil.example' },
  })
  assert.equal(evil.status, 403)
  assert.match(evil.body.toString(), /Origin http:\/\/evil\.example is not this server's page/)
  assert.equal((await req('POST', '/api/lab/routers/verify', { headers: token })).status, 403)
  for (const url of ['/api/lab/routers/live', '/api/lab/routers/term/h1']) {
    assert.equal(await wsStatus(url, { ...token, origin: 'http://evil.example' }), 403, url)
    assert.equal(await wsStatus(url, { origin: server.origin }), 403, `${url} without token`)
  }
  assert.equal(await wsStatus('/api/lab/routers/live', { ...token, origin: server.origin }), 101)
})

test('every parameter is checked against the lab before use', async () => {
  const notFound = async (m: string, url: string, body?: unknown): Promise<string> => {
    const r = await page(m, url, body)
    assert.equal(r.status, 404, `${url}: ${r.body.toString()}`)
    return json<{ error: { message: string } }>(r).error.message
  }
  assert.match(await notFound('GET', '/api/lab/nolab'), /no lab "nolab" is deployed/)
  assert.match(await notFound('GET', '/api/lab/..%2f..%2fetc'), /is deployed/)
  assert.match(await notFound('GET', '/api/lab/routers/capture?link=99'), /has no link "99"/)
  assert.match(
    await notFound('POST', '/api/lab/routers/rate', { link: 'x', rate: '1mbit' }),
    /has no link "x"/,
  )
  const topo = (await snapshotOf('routers')).topo
  const bad = await page('POST', '/api/lab/routers/rate', {
    link: topo.links[0]!.id,
    rate: 'fast; reboot',
  })
  assert.equal(bad.status, 400)
  assert.match(
    json<{ error: { message: string } }>(bad).error.message,
    /invalid rate "fast; reboot"/,
  )
  const extra = await page('POST', '/api/lab/routers/rate', { link: '0', rate: null, cmd: 'x' })
  assert.equal(extra.status, 400)
  const secs = await page('GET', `/api/lab/routers/capture?link=${topo.links[0]!.id}&seconds=1e9`)
  assert.equal(secs.status, 400)
  const ws = { 'x-nsdn-token': server.token, origin: server.origin }
  assert.equal(await wsStatus('/api/lab/routers/term/nobody', ws), 404)
  assert.equal(await wsStatus('/api/lab/routers/term/..', ws), 404)
})

test('the snapshot is the lab: its nodes, switches and links, with the kernel interfaces', async () => {
  const snap = await snapshotOf('vlan')
  assert.deepEqual(snap.topo.nodes.map((n) => n.name).sort(), ['ns1', 'ns2', 'ns3'])
  assert.deepEqual(
    snap.topo.switches.map((n) => n.name),
    ['OVS-1'],
  )
  assert.equal(snap.topo.links.length, 3)
  const eth1 = snap.ifs.find((i) => i.ns === 'vlan-ns1' && i.name === 'eth1')
  assert.ok(eth1?.addrs.includes('192.168.0.1/24'), JSON.stringify(eth1))
})

test('a rate set from the page is a tbf qdisc on the link; null removes it', async () => {
  const topo = (await snapshotOf('routers')).topo
  const l = topo.links.find((k) => k.a.node === 'h1' || k.b.node === 'h1')!
  const e = l.a.node === 'h1' ? l.a : l.b
  const tbf = (): boolean => hasTbf(e.ns, e.ifname)
  const set = await page('POST', '/api/lab/routers/rate', { link: l.id, rate: '5mbit' })
  assert.equal(set.status, 200, set.body.toString())
  assert.equal(tbf(), true)
  const clear = await page('POST', '/api/lab/routers/rate', { link: l.id, rate: null })
  assert.equal(clear.status, 200, clear.body.toString())
  assert.equal(tbf(), false)
})

/** A page of the server, logged in through the printed URL. */
async function open(lab: string): Promise<Page> {
  const p = await browser!.newPage({ viewport: { width: 1280, height: 720 } })
  await p.goto(server.url.replace('/?', `/lab/${lab}?`))
  await p.waitForSelector('#status[data-state="live"]', { timeout: 30_000 })
  return p
}

/** Type a command line into the page's shell and wait until its output shows want. */
async function typeIn(p: Page, line: string, want: string): Promise<void> {
  await p.waitForSelector('#term .xterm-rows')
  await p.locator('#term').click()
  await p.keyboard.type(`${line}\n`)
  await p.waitForFunction(
    (w) => document.querySelector('#term .xterm-rows')?.textContent?.includes(w),
    want,
    // a login shell on a loaded machine may take seconds to start
    { timeout: 20_000 },
  )
}

test('the page draws every node of the lab, and a link set down by hand turns red', async (t) => {
  if (!browser) return t.skip(noBrowser)
  const p = await open('routers')
  try {
    assert.equal(new URL(p.url()).search, '', 'the token left the URL')
    for (const n of ['h1', 'r1', 'r2', 'h2'])
      assert.equal(await p.locator(`[data-node="${n}"]`).count(), 1, n)
    await p.locator(`[data-node="r1"]`).click()
    await typeIn(p, 'ip -br addr', '10.0.2.1/24')
    await p.screenshot({ path: path.join(SHOTS, 'lab-routers.png') })

    const topo = (await snapshotOf('routers')).topo
    const l = topo.links.find((k) => k.a.node === 'r1' && k.b.node === 'r2')!
    const link = `[data-link="${l.id}"]`
    await p.waitForSelector(`${link}[data-state="up"]`, { timeout: 2000 })
    // by hand, with iproute2: the page learns it from the kernel's notification
    spawnSync('ip', ['-n', l.a.ns, 'link', 'set', l.a.ifname, 'down'])
    await p.waitForSelector(`${link}[data-state="down"]`, { timeout: 2000 })
    assert.equal(
      await p.locator(link).evaluate((g) => getComputedStyle(g.querySelector('line.wire')!).stroke),
      'rgb(210, 59, 59)',
    )
    spawnSync('ip', ['-n', l.a.ns, 'link', 'set', l.a.ifname, 'up'])
    await p.waitForSelector(`${link}[data-state="up"]`, { timeout: 2000 })
  } finally {
    await p.close()
  }
})

test("a command typed in a node's shell runs in that node's namespace", async (t) => {
  if (!browser) return t.skip(noBrowser)
  const p = await open('routers')
  try {
    const ino = fs.statSync('/run/netns/routers-h1').ino
    await p.locator('[data-node="h1"]').click()
    await typeIn(p, 'hostname; readlink /proc/self/ns/net', `net:[${ino}]`)
  } finally {
    await p.close()
  }
})

test('the lab list links every deployed lab; the explain tab shows the commands', async (t) => {
  if (!browser) return t.skip(noBrowser)
  const p = await browser.newPage()
  try {
    await p.goto(server.url)
    await p.waitForSelector('#labs a[href="/lab/vlan"]')
    assert.deepEqual(await p.locator('#labs a').allTextContents(), ['routers', 'vlan'])
    await p.locator('#labs a[href="/lab/routers"]').click()
    await p.waitForSelector('#status[data-state="live"]', { timeout: 30_000 })
    await p.locator('nav button[data-tab="explain"]').click()
    await p.waitForFunction(() =>
      document.querySelector('#explain')?.textContent?.includes('ip netns add routers-h1'),
    )
  } finally {
    await p.close()
  }
})

test('a capture downloads as pcap, the rate form sets a limit, verify colours each check', async (t) => {
  if (!browser) return t.skip(noBrowser)
  const p = await open('vlan')
  try {
    await p.locator('[data-link] line.hit').first().click({ force: true })
    await p.locator('#capture input[name="seconds"]').fill('1')
    const [dl] = await Promise.all([
      p.waitForEvent('download'),
      p.locator('#capture button').click(),
    ])
    const file = path.join(work, 'capture.pcap')
    await dl.saveAs(file)
    const magic = fs.readFileSync(file).subarray(0, 4).toString('hex')
    assert.ok(['d4c3b2a1', 'a1b2c3d4', '4d3cb2a1', 'a1b23c4d'].includes(magic), `magic ${magic}`)
    assert.match(dl.suggestedFilename(), /^vlan-.*\.pcap$/)

    // the rate form: a limit on ns1's link, a bad rate said plainly, the limit cleared
    const rate = async (value: string | null, want: RegExp): Promise<void> => {
      if (value === null) await p.locator('#rate button[type="button"]').click()
      else {
        await p.locator('#rate input').fill(value)
        await p.locator('#rate button[type="submit"]').click()
      }
      await p.waitForFunction(
        (w) => new RegExp(w).test(document.querySelector('#rate-msg')?.textContent ?? ''),
        want.source,
      )
    }
    await rate('5mbit', /^limited to 5mbit$/)
    assert.equal(hasTbf('vlan-ns1', 'eth1'), true)
    await rate('fast', /invalid rate "fast"/)
    await rate(null, /^limit removed$/)
    assert.equal(hasTbf('vlan-ns1', 'eth1'), false)

    await p.locator('nav button[data-tab="checks"]').click()
    const [res] = await Promise.all([
      p.waitForResponse((r) => r.url().endsWith('/verify'), { timeout: 120_000 }),
      p.locator('#verify').click(),
    ])
    const results = (await res.json()) as { id: string; ok: boolean }[]
    assert.equal(results.length, 4)
    for (const r of results)
      await p.waitForSelector(`#checks li[data-check="${r.id}"].${r.ok ? 'pass' : 'fail'}`)
    await p.screenshot({ path: path.join(SHOTS, 'lab-vlan.png') })
  } finally {
    await p.close()
  }
})

test('the 250-host star, served by nsdn lab serve: laid out, live, and the server memory', async (t) => {
  if (!browser) return t.skip(noBrowser)
  const name = await up('star-250.yaml')
  const child = spawn(process.execPath, [MAIN, 'lab', 'serve', name, '--port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stdout.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr.on('data', (d: Buffer) => (err += d.toString()))
  const exited = new Promise<number | null>((res) => child.on('exit', (c) => res(c)))
  try {
    assert.ok(await eventually(() => /open http:\S+/.test(out), 20_000), `no URL: ${out}${err}`)
    const url = /open (http:\S+)/.exec(out)![1]!
    assert.match(url, new RegExp(`^http://127\\.0\\.0\\.1:\\d+/lab/${name}\\?token=[0-9a-f]{48}$`))
    const p = await browser.newPage({ viewport: { width: 1280, height: 720 } })
    const t0 = Date.now()
    await p.goto(url)
    // drawn from the lab's record while the live view opens, then coloured by its snapshot
    await p.waitForSelector('[data-node="sw"]', { timeout: 60_000 })
    const drawn = Date.now() - t0
    await p.waitForSelector('#status[data-state="live"]', { timeout: 60_000 })
    const ready = Date.now() - t0
    assert.equal(await p.locator('[data-node]').count(), 251)
    assert.equal(await p.locator('[data-link][data-state="up"]').count(), 250)
    // a few rounds of counters, as a watcher of the page would have them
    await new Promise((r) => setTimeout(r, 3000))
    const layout = await p.locator('#status').getAttribute('data-layout-ms')
    const rss = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]
    t.diagnostic(
      `star-250: elk layout ${layout} ms in the browser, page drawn after ${drawn} ms, ` +
        `live after ${ready} ms, ` +
        `server RSS ${(Number(rss) / 1024).toFixed(0)} MiB with the page open`,
    )
    await p.screenshot({ path: path.join(SHOTS, 'lab-star.png') })
    await p.close()
  } finally {
    child.kill('SIGTERM')
  }
  assert.equal(await exited, 0, err)
  assert.match(out, /nsdn lab serve: stopped/)
})
