// nsdn lab serve: the page. A lab's topology laid out once by elk, then kept live from the
// server's change batches (applied once per animation frame, no relayout for counters).
'use strict'

const SVGNS = 'http://www.w3.org/2000/svg'
const $ = (sel) => document.querySelector(sel)
const enc = new TextEncoder()

function el(tag, attrs = {}, parent, ns) {
  const e = ns ? document.createElementNS(ns, tag) : document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'text') e.textContent = v
    else if (v !== undefined && v !== null) e.setAttribute(k, v)
  }
  if (parent) parent.appendChild(e)
  return e
}
const s = (tag, attrs, parent) => el(tag, attrs, parent, SVGNS)

async function api(url, opts = {}) {
  const r = await fetch(url, { credentials: 'same-origin', ...opts })
  if (!r.ok) {
    let msg = `${r.status} ${r.statusText}`
    try {
      const j = await r.json()
      msg = j.error.message + (j.error.hint ? ` (${j.error.hint})` : '')
    } catch {
      // not JSON: keep the status line
    }
    throw new Error(msg)
  }
  return r
}

function status(text, state) {
  const st = $('#status')
  st.textContent = text
  if (state) st.dataset.state = state
}

const bits = (bps) =>
  bps >= 1e9
    ? `${(bps / 1e9).toFixed(1)} Gbit/s`
    : bps >= 1e6
      ? `${(bps / 1e6).toFixed(1)} Mbit/s`
      : bps >= 1e3
        ? `${(bps / 1e3).toFixed(0)} kbit/s`
        : `${Math.round(bps)} bit/s`

// ---------------------------------------------------------------- lab list

async function showList() {
  $('#list').hidden = false
  $('#title').textContent = ''
  const ul = $('#labs')
  const draw = async () => {
    try {
      const labs = await (await api('/api/labs')).json()
      ul.replaceChildren()
      for (const l of labs) {
        const li = el('li', {}, ul)
        el('a', { href: `/lab/${encodeURIComponent(l.name)}`, text: l.name }, li)
        el('span', { class: 'hint', text: `  ${l.state} · ${l.file}` }, li)
      }
      if (!labs.length) el('li', { class: 'hint', text: 'no lab is deployed' }, ul)
      status(`${labs.length} labs`, 'live')
    } catch (e) {
      status(e.message, 'closed')
    }
  }
  await draw()
  setInterval(draw, 3000)
}

// ---------------------------------------------------------------- the lab's state

const S = {
  name: '',
  topo: null,
  /** "ns|name" -> LiveIf */
  ifs: new Map(),
  /** "ns|ifindex" -> "ns|name" */
  names: new Map(),
  /** ns -> routes */
  routes: new Map(),
  /** "ns|ifname" -> [link ids] and [node names] whose drawing depends on it */
  deps: new Map(),
  links: new Map(),
  nodes: new Map(),
  pending: [],
  raf: 0,
  updates: 0,
  layoutMs: 0,
  selected: null,
  dirty: { links: new Set(), nodes: new Set(), rates: new Set() },
}

const key = (ns, name) => `${ns}|${name}`
const ifOf = (end) => S.ifs.get(key(end.ns, end.ifname))
const isUp = (i) => !!i && i.up && i.running

function dep(k, what, id) {
  if (!S.deps.has(k)) S.deps.set(k, { links: [], nodes: [] })
  S.deps.get(k)[what].push(id)
}

function touch(k, rates) {
  const d = S.deps.get(k)
  if (!d) return
  for (const l of d.links) (rates ? S.dirty.rates : S.dirty.links).add(l)
  if (!rates) for (const n of d.nodes) S.dirty.nodes.add(n)
}

function putIf(i) {
  const k = key(i.ns, i.name)
  const byIndex = key(i.ns, i.ifindex)
  const old = S.names.get(byIndex)
  if (old && old !== k) {
    S.ifs.delete(old)
    touch(old)
  }
  S.names.set(byIndex, k)
  S.ifs.set(k, i)
  touch(k)
}

function apply(c) {
  if (c.type === 'if') putIf(c.if)
  else if (c.type === 'if-gone') {
    const k = S.names.get(key(c.ns, c.ifindex)) ?? key(c.ns, c.name)
    S.names.delete(key(c.ns, c.ifindex))
    S.ifs.delete(k)
    touch(k)
  } else if (c.type === 'routes') {
    S.routes.set(c.ns, c.routes)
    for (const n of S.topo.nodes) if (n.ns === c.ns) S.dirty.nodes.add(n.name)
  } else if (c.type === 'rates')
    for (const r of c.rates) {
      const k = S.names.get(key(r.ns, r.ifindex))
      const i = k && S.ifs.get(k)
      if (!i) continue
      i.rates = r.rates
      i.stats = r.stats
      touch(k, true)
    }
}

function onBatch(changes) {
  S.pending.push(changes)
  S.updates++
  // a hidden tab gets no frames: apply now rather than let batches pile up
  if (document.hidden && S.pending.length > 50) return flush()
  if (!S.raf) S.raf = requestAnimationFrame(flush)
}

function flush() {
  S.raf = 0
  for (const batch of S.pending) for (const c of batch) apply(c)
  S.pending = []
  for (const id of S.dirty.links) drawLinkState(id)
  for (const id of S.dirty.rates) if (!S.dirty.links.has(id)) drawRate(id)
  for (const n of S.dirty.nodes) drawNodeState(n)
  const sel = S.selected
  const changed =
    sel &&
    (sel.type === 'link'
      ? S.dirty.links.has(sel.id) || S.dirty.rates.has(sel.id)
      : S.dirty.nodes.has(sel.id))
  S.dirty.links.clear()
  S.dirty.rates.clear()
  S.dirty.nodes.clear()
  if (changed) drawDetailsLive()
  statusLine()
}

function statusLine() {
  const t = S.topo
  status(
    `${t.nodes.length + t.switches.length} nodes, ${t.links.length} links · ` +
      `layout ${S.layoutMs} ms (elk) · ${S.updates} updates`,
  )
}

// ---------------------------------------------------------------- layout

const SIZE = {
  host: [84, 36],
  router: [84, 36],
  root: [96, 36],
  container: [84, 36],
  switch: [120, 40],
}
/** More leaves than this on one switch are packed in a grid below it, not in one long row. */
const FAN = 12

/** Every node and switch, with its position (centre) from elk. */
async function layout(topo) {
  const all = [
    ...topo.nodes.map((n) => ({ id: n.name, kind: n.kind, ns: n.ns, sw: false })),
    ...topo.switches.map((x) => ({ id: x.name, kind: x.kind, ns: x.ns, dev: x.dev, sw: true })),
  ]
  const degree = new Map(all.map((n) => [n.id, new Set()]))
  for (const l of topo.links) {
    degree.get(l.a.node).add(l.b.node)
    degree.get(l.b.node).add(l.a.node)
  }
  // leaves: nodes linked to one switch only; grouped per switch when there are many
  const fans = new Map()
  for (const n of all) {
    const peers = [...degree.get(n.id)]
    if (n.sw || peers.length !== 1) continue
    const p = all.find((x) => x.id === peers[0])
    if (!p?.sw) continue
    if (!fans.has(p.id)) fans.set(p.id, [])
    fans.get(p.id).push(n.id)
  }
  for (const [sw, leaves] of fans) if (leaves.length <= FAN) fans.delete(sw)
  const inFan = new Map()
  for (const [sw, leaves] of fans) for (const l of leaves) inFan.set(l, sw)

  const box = (n) => {
    const [w, h] = SIZE[n.sw ? 'switch' : n.kind] ?? SIZE.host
    return { id: `n:${n.id}`, width: w, height: h }
  }
  const graph = {
    id: 'root',
    layoutOptions: {
      'elk.algorithm': 'layered',
      'elk.direction': 'DOWN',
      // links are drawn straight, centre to centre: elk's routing would be thrown away
      'elk.edgeRouting': 'POLYLINE',
      'elk.spacing.nodeNode': '70',
      'elk.layered.spacing.nodeNodeBetweenLayers': '80',
    },
    children: [
      ...all.filter((n) => !inFan.has(n.id)).map(box),
      ...[...fans].map(([sw, leaves]) => ({
        id: `fan:${sw}`,
        layoutOptions: {
          'elk.algorithm': 'box',
          'elk.aspectRatio': '1.8',
          'elk.spacing.nodeNode': '16',
        },
        children: leaves.map((id) => box(all.find((n) => n.id === id))),
      })),
    ],
    edges: [],
  }
  const seen = new Set()
  for (const l of topo.links) {
    // a switch above what hangs off it
    const [x, y] = S.topo.switches.some((w) => w.name === l.b.node) ? [l.b, l.a] : [l.a, l.b]
    const a = inFan.has(x.node) ? `fan:${inFan.get(x.node)}` : `n:${x.node}`
    const b = inFan.has(y.node) ? `fan:${inFan.get(y.node)}` : `n:${y.node}`
    const k = a < b ? `${a} ${b}` : `${b} ${a}`
    if (seen.has(k) || a === b) continue
    seen.add(k)
    graph.edges.push({ id: `e${graph.edges.length}`, sources: [a], targets: [b] })
  }
  const t0 = performance.now()
  const out = await new ELK().layout(graph)
  S.layoutMs = Math.round(performance.now() - t0)
  const pos = new Map()
  const place = (c, dx, dy) => {
    if (c.id.startsWith('fan:')) return c.children.forEach((k) => place(k, dx + c.x, dy + c.y))
    pos.set(c.id.slice(2), {
      x: dx + c.x + c.width / 2,
      y: dy + c.y + c.height / 2,
      w: c.width,
      h: c.height,
    })
  }
  out.children.forEach((c) => place(c, 0, 0))
  return { all, pos, width: out.width, height: out.height }
}

// ---------------------------------------------------------------- drawing

/** The transform of the drawing; `user` once the reader has zoomed or panned (no refit then). */
const view = { x: 0, y: 0, k: 1, w: 0, h: 0, user: false }

function setView() {
  $('#viewport').setAttribute('transform', `translate(${view.x} ${view.y}) scale(${view.k})`)
  $('#graph').classList.toggle('far', view.k < 0.55)
}

function fitView(w = view.w, h = view.h) {
  Object.assign(view, { w, h })
  const r = $('#graph').getBoundingClientRect()
  const pad = 30
  view.k = Math.min(
    1.2,
    (r.width - 2 * pad) / Math.max(w, 1),
    (r.height - 2 * pad) / Math.max(h, 1),
  )
  view.x = (r.width - w * view.k) / 2
  view.y = (r.height - h * view.k) / 2
  setView()
}

function panZoom() {
  const g = $('#graph')
  // the shell pane or the window changed the drawing's room: fit again, unless zoomed by hand
  new ResizeObserver(() => view.w && !view.user && fitView()).observe(g)
  g.addEventListener(
    'wheel',
    (e) => {
      e.preventDefault()
      const r = g.getBoundingClientRect()
      const f = Math.exp(-e.deltaY * 0.0015)
      const [mx, my] = [e.clientX - r.left, e.clientY - r.top]
      view.x = mx - (mx - view.x) * f
      view.y = my - (my - view.y) * f
      view.k *= f
      view.user = true
      setView()
    },
    { passive: false },
  )
  let drag = null
  g.addEventListener('pointerdown', (e) => {
    if (e.target !== g) return
    drag = { x: e.clientX - view.x, y: e.clientY - view.y }
    g.setPointerCapture(e.pointerId)
  })
  g.addEventListener('pointermove', (e) => {
    if (!drag) return
    view.x = e.clientX - drag.x
    view.y = e.clientY - drag.y
    view.user = true
    setView()
  })
  g.addEventListener('pointerup', () => (drag = null))
}

/** A point d pixels from a towards b (capped at a fraction of the way). */
function along(a, b, d, maxFrac) {
  const len = Math.hypot(b.x - a.x, b.y - a.y) || 1
  const t = Math.min(d / len, maxFrac)
  return { x: a.x + (b.x - a.x) * t, y: a.y + (b.y - a.y) * t }
}

function drawGraph(lay) {
  const vp = $('#viewport')
  vp.replaceChildren()
  const gl = s('g', { class: 'links' }, vp)
  const gn = s('g', { class: 'nodes' }, vp)
  S.links.clear()
  S.nodes.clear()
  S.deps.clear()
  for (const l of S.topo.links) {
    const pa = lay.pos.get(l.a.node)
    const pb = lay.pos.get(l.b.node)
    const g = s('g', { class: 'link', 'data-link': l.id }, gl)
    s('line', { class: 'hit', x1: pa.x, y1: pa.y, x2: pb.x, y2: pb.y }, g)
    s('line', { class: 'wire', x1: pa.x, y1: pa.y, x2: pb.x, y2: pb.y }, g)
    // a node end's name and addresses beside it (a switch port's long name is in the details),
    // the link's tag and rate on its middle: right of a line that runs down, along a level one
    const across = Math.abs(pb.x - pa.x) > 2 * Math.abs(pb.y - pa.y)
    const gap = (p) => (across ? p.w : p.h) * 0.5 + (across ? 6 : 16)
    const qa = along(pa, pb, gap(pa), 0.4)
    const qb = along(pb, pa, gap(pb), 0.4)
    const mid = { x: (pa.x + pb.x) / 2, y: (pa.y + pb.y) / 2 }
    const endAt = (q, other) =>
      across
        ? { x: q.x, y: q.y - 6, 'text-anchor': other.x > q.x ? 'start' : 'end' }
        : { x: q.x + 6, y: q.y + 3 }
    const lbl = {
      a: s('text', { class: 'lbl end', ...endAt(qa, pb) }, g),
      b: s('text', { class: 'lbl end', ...endAt(qb, pa) }, g),
      tag: s('text', { class: 'lbl tag', x: mid.x, y: across ? mid.y + 14 : mid.y - 3 }, g),
      rate: s('text', { class: 'lbl rate', x: mid.x, y: across ? mid.y + 26 : mid.y + 10 }, g),
    }
    g.addEventListener('click', () => select('link', l.id))
    S.links.set(l.id, { link: l, g, lbl })
    dep(key(l.a.ns, l.a.ifname), 'links', l.id)
    dep(key(l.b.ns, l.b.ifname), 'links', l.id)
    dep(key(l.a.ns, l.a.ifname), 'nodes', l.a.node)
    dep(key(l.b.ns, l.b.ifname), 'nodes', l.b.node)
  }
  for (const n of lay.all) {
    const p = lay.pos.get(n.id)
    const cls = `node ${n.sw ? 'switch' : n.kind}`
    const g = s('g', { class: cls, 'data-node': n.id, transform: `translate(${p.x} ${p.y})` }, gn)
    s('rect', { x: -p.w / 2, y: -p.h / 2, width: p.w, height: p.h, rx: n.sw ? 3 : 7 }, g)
    s('text', { y: n.sw ? -2 : -1, text: n.id }, g)
    s('text', { class: 'sub', y: 11, text: n.sw ? `${n.kind} ${n.dev}` : n.ns || '(root ns)' }, g)
    g.addEventListener('click', () => {
      select('node', n.id)
      if (!n.sw) openTerm(n.id)
    })
    S.nodes.set(n.id, { node: n, g })
    if (n.sw) dep(key(n.ns, n.dev), 'nodes', n.id)
  }
  for (const id of S.links.keys()) drawLinkState(id)
  for (const id of S.nodes.keys()) drawNodeState(id)
  fitView(lay.width, lay.height)
}

const shownAddrs = (i) => (i ? i.addrs.filter((a) => !a.startsWith('fe80:')) : [])

function drawLinkState(id) {
  const d = S.links.get(id)
  if (!d) return
  const { link, g, lbl } = d
  const a = ifOf(link.a)
  const b = ifOf(link.b)
  g.dataset.state = isUp(a) && isUp(b) ? 'up' : 'down'
  const end = (e, i) => [e.ifname, ...shownAddrs(i)].join(' ')
  const isSwitch = (e) => S.topo.switches.some((w) => w.name === e.node)
  lbl.a.textContent = isSwitch(link.a) ? '' : end(link.a, a)
  lbl.b.textContent = isSwitch(link.b) ? '' : end(link.b, b)
  const tag = (e, i) =>
    i?.ovs?.tag ??
    e.vlan ??
    ((i?.ovs?.trunks ?? e.trunks) ? `trunk ${(i?.ovs?.trunks ?? e.trunks).join(',')}` : '')
  const t = tag(link.a, a) || tag(link.b, b)
  lbl.tag.textContent = t === '' ? '' : typeof t === 'number' ? `vlan ${t}` : t
  drawRate(id)
}

function drawRate(id) {
  const d = S.links.get(id)
  if (!d) return
  const { link, lbl } = d
  const a = ifOf(link.a)
  const bps = a?.rates ? Math.max(a.rates.txBps, a.rates.rxBps) : 0
  const limit = a?.rate ?? link.rate
  lbl.rate.textContent = [bps > 0 ? bits(bps) : '', limit ? `limit ${limit}` : '']
    .filter(Boolean)
    .join(' · ')
}

function nodeEnds(name) {
  const out = []
  for (const l of S.topo.links) {
    if (l.a.node === name) out.push(l.a)
    if (l.b.node === name) out.push(l.b)
  }
  return out
}

function drawNodeState(name) {
  const d = S.nodes.get(name)
  if (!d) return
  const ends = nodeEnds(name)
  const ifs = ends.map(ifOf)
  const present = ifs.filter(Boolean)
  const up = present.filter(isUp).length
  let st = 'up'
  if (d.node.sw) {
    const dev = S.ifs.get(key(d.node.ns, d.node.dev))
    if (!dev && !present.length) st = 'missing'
    else if (up < ends.length) st = up === 0 ? 'down' : 'partial'
  } else if (ends.length && !present.length) st = 'missing'
  else if (up < ends.length) st = up === 0 ? 'down' : 'partial'
  d.g.dataset.state = st
}

// ---------------------------------------------------------------- side panel

function tab(name) {
  for (const b of document.querySelectorAll('#side nav button'))
    b.classList.toggle('on', b.dataset.tab === name)
  for (const t of ['details', 'checks', 'explain']) $(`#tab-${t}`).hidden = t !== name
  // a script reads better wide
  $('#lab').classList.toggle('wide', name === 'explain')
  if (name === 'explain' && !$('#explain').textContent) loadExplain()
}

async function loadExplain() {
  const pre = $('#explain')
  pre.textContent = 'loading…'
  try {
    pre.textContent = await (await api(`/api/lab/${encodeURIComponent(S.name)}/explain`)).text()
  } catch (e) {
    pre.textContent = ''
    el('span', { class: 'err', text: e.message }, pre)
  }
}

function select(type, id) {
  for (const x of document.querySelectorAll('.sel')) x.classList.remove('sel')
  S.selected = { type, id }
  const d = type === 'link' ? S.links.get(id) : S.nodes.get(id)
  d?.g.classList.add('sel')
  tab('details')
  drawDetails()
}

const ipCmd = (ns, rest) => (ns ? `ip -n ${ns} ${rest}` : `ip ${rest}`)

const selKey = (sel) => (sel ? `${sel.type}:${sel.id}` : '')

function drawDetails() {
  const box = $('#tab-details')
  box.replaceChildren()
  const sel = S.selected
  box.dataset.sel = selKey(sel)
  if (!sel) return
  if (sel.type === 'link') {
    const l = S.links.get(sel.id).link
    el('h3', { text: `${l.id}: ${l.a.node}:${l.a.ifname} — ${l.b.node}:${l.b.ifname}` }, box)
    el('div', { id: 'live-details' }, box)
    linkActions(box, l)
  } else {
    const n = S.nodes.get(sel.id).node
    el('h3', { text: `${n.sw ? 'Switch' : 'Node'} ${n.id} (${n.kind})` }, box)
    if (!n.sw) {
      const b = el('button', { text: 'Open a shell' }, box)
      b.addEventListener('click', () => openTerm(n.id))
    }
    el('div', { id: 'live-details' }, box)
  }
  drawDetailsLive()
}

function ifTable(parent, title, e, i) {
  el('h4', { text: title }, parent)
  const t = el('table', {}, parent)
  const row = (k, v) => {
    const tr = el('tr', {}, t)
    el('th', { text: k }, tr)
    return el('td', { text: v }, tr)
  }
  row('netns', e.ns || '(root)')
  const st = row('state', '')
  if (!i) {
    el('span', { class: 'st-down', text: 'gone' }, st)
    return
  }
  el(
    'span',
    {
      class: isUp(i) ? 'st-up' : 'st-down',
      text: i.up ? (i.running ? 'UP' : 'UP, NO-CARRIER') : 'DOWN',
    },
    st,
  )
  row('mtu / mac', `${i.mtu} / ${i.mac ?? '-'}`)
  if (i.master) row('master', i.master)
  row('addresses', i.addrs.join(', ') || '-')
  const tag = i.ovs?.tag ?? e.vlan
  if (tag !== undefined) row('vlan', String(tag))
  const tr = i.ovs?.trunks ?? e.trunks
  if (tr) row('trunks', tr.join(','))
  const x = i.stats
  row(
    'rx',
    `${x.rxBytes} bytes, ${x.rxPackets} packets, ${x.rxDropped} dropped, ${x.rxErrors} errors`,
  )
  row(
    'tx',
    `${x.txBytes} bytes, ${x.txPackets} packets, ${x.txDropped} dropped, ${x.txErrors} errors`,
  )
  if (i.rates)
    row(
      'rate',
      `rx ${bits(i.rates.rxBps)} (${Math.round(i.rates.rxPps)} pkt/s), tx ${bits(i.rates.txBps)} (${Math.round(i.rates.txPps)} pkt/s)`,
    )
  if (i.rate) row('limit', i.rate)
}

function drawDetailsLive() {
  const box = $('#live-details')
  const sel = S.selected
  if (!box || !sel) return
  box.replaceChildren()
  if (sel.type === 'link') {
    const l = S.links.get(sel.id).link
    for (const [side, e] of [
      ['a', l.a],
      ['b', l.b],
    ]) {
      ifTable(box, `${side}: ${e.node} ${e.ifname}`, e, ifOf(e))
      el('pre', { text: ipCmd(e.ns, `-s link show dev ${e.ifname}`) }, box)
    }
    return
  }
  const n = S.nodes.get(sel.id).node
  for (const e of nodeEnds(n.id)) ifTable(box, e.ifname, e, ifOf(e))
  if (!n.sw) {
    const routes = S.routes.get(n.ns) ?? []
    el('h4', { text: 'routes' }, box)
    el(
      'pre',
      {
        text:
          `$ ${ipCmd(n.ns, 'route')}\n` +
          (routes
            .map((r) =>
              [r.dst, r.via ? `via ${r.via}` : '', r.dev ? `dev ${r.dev}` : '']
                .filter(Boolean)
                .join(' '),
            )
            .join('\n') || '(none)'),
      },
      box,
    )
  }
}

function linkActions(box, l) {
  el('h4', { text: 'Packet capture (pcap)' }, box)
  const f = el('form', { class: 'row', id: 'capture' }, box)
  const end = el('select', { name: 'end' }, f)
  el('option', { value: 'a', text: `${l.a.node}:${l.a.ifname}` }, end)
  el('option', { value: 'b', text: `${l.b.node}:${l.b.ifname}` }, end)
  const secs = el('input', { name: 'seconds', type: 'number', min: 1, max: 300, value: 5 }, f)
  el('span', { text: 's' }, f)
  el('button', { type: 'submit', text: 'Capture' }, f)
  f.addEventListener('submit', (ev) => {
    ev.preventDefault()
    const q = new URLSearchParams({ link: l.id, end: end.value, seconds: secs.value })
    const a = el('a', { href: `/api/lab/${encodeURIComponent(S.name)}/capture?${q}`, download: '' })
    a.click()
  })

  el('h4', { text: 'Rate limit (both ends, tbf)' }, box)
  const r = el('form', { class: 'row', id: 'rate' }, box)
  const rate = el('input', { name: 'rate', placeholder: '10mbit', value: l.rate ?? '' }, r)
  el('button', { type: 'submit', text: 'Set' }, r)
  const clear = el('button', { type: 'button', text: 'Clear' }, r)
  const msg = el('div', { class: 'hint', id: 'rate-msg' }, box)
  const post = async (value) => {
    msg.textContent = 'applying…'
    msg.className = 'hint'
    try {
      await api(`/api/lab/${encodeURIComponent(S.name)}/rate`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ link: l.id, rate: value }),
      })
      msg.textContent = value ? `limited to ${value}` : 'limit removed'
    } catch (e) {
      msg.textContent = e.message
      msg.className = 'err'
    }
  }
  r.addEventListener('submit', (ev) => {
    ev.preventDefault()
    void post(rate.value.trim())
  })
  clear.addEventListener('click', () => void post(null))
}

function drawChecks() {
  const ul = $('#checks')
  ul.replaceChildren()
  for (const c of S.topo.checks) el('li', { 'data-check': c.id, text: c.text }, ul)
  if (!S.topo.checks.length) el('li', { class: 'hint', text: 'this lab has no checks' }, ul)
}

async function verify() {
  const b = $('#verify')
  b.disabled = true
  for (const li of document.querySelectorAll('#checks li[data-check]')) li.className = 'running'
  try {
    const results = await (
      await api(`/api/lab/${encodeURIComponent(S.name)}/verify`, { method: 'POST' })
    ).json()
    for (const r of results) {
      const li = document.querySelector(`#checks li[data-check="${CSS.escape(r.id)}"]`)
      if (!li) continue
      li.className = r.ok ? 'pass' : 'fail'
      li.querySelector('.detail')?.remove()
      el('span', { class: 'detail', text: `${r.ok ? 'passed' : 'FAILED'}: ${r.detail}` }, li)
    }
  } catch (e) {
    for (const li of document.querySelectorAll('#checks li.running')) li.className = ''
    el('li', { class: 'err', text: e.message }, $('#checks'))
  } finally {
    b.disabled = false
  }
}

// ---------------------------------------------------------------- terminal

const T = { term: null, ws: null, fit: null }

function closeTerm() {
  T.ws?.close()
  T.term?.dispose()
  T.term = T.ws = T.fit = null
  $('#term-pane').hidden = true
}

function openTerm(node) {
  closeTerm()
  $('#term-pane').hidden = false
  $('#term-title').textContent = `shell in ${node}`
  const term = new Terminal({ fontSize: 13, cursorBlink: true, scrollback: 2000 })
  const fit = new FitAddon.FitAddon()
  term.loadAddon(fit)
  term.open($('#term'))
  fit.fit()
  const q = new URLSearchParams({ cols: term.cols, rows: term.rows })
  const ws = new WebSocket(
    `ws://${location.host}/api/lab/${encodeURIComponent(S.name)}/term/${encodeURIComponent(node)}?${q}`,
  )
  ws.binaryType = 'arraybuffer'
  ws.onmessage = (e) => {
    if (typeof e.data !== 'string') return term.write(new Uint8Array(e.data))
    const m = JSON.parse(e.data)
    if (m.type === 'exit') term.write(`\r\n[${m.message ?? `the shell ended (${m.code})`}]\r\n`)
  }
  ws.onclose = () => term.write('\r\n[disconnected]\r\n')
  const send = (bytes) => ws.readyState === WebSocket.OPEN && ws.send(bytes)
  term.onData((d) => send(enc.encode(d)))
  term.onBinary((d) => send(Uint8Array.from(d, (c) => c.charCodeAt(0))))
  term.onResize(({ cols, rows }) => {
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'resize', cols, rows }))
  })
  term.focus()
  Object.assign(T, { term, ws, fit })
}

// ---------------------------------------------------------------- the lab page

async function openLab(name) {
  S.name = name
  $('#lab').hidden = false
  $('#title').textContent = name
  document.title = `${name} · nsdn lab`
  panZoom()
  for (const b of document.querySelectorAll('#side nav button'))
    b.addEventListener('click', () => tab(b.dataset.tab))
  $('#verify').addEventListener('click', () => void verify())
  $('#term-close').addEventListener('click', closeTerm)
  addEventListener('resize', () => T.fit?.fit())
  connect()
}

function connect() {
  status('connecting…', 'connecting')
  const ws = new WebSocket(`ws://${location.host}/api/lab/${encodeURIComponent(S.name)}/live`)
  // one message at a time: a snapshot or a batch waits for the layout of the topology
  let queue = Promise.resolve()
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data)
    queue = queue.then(async () => {
      if (m.type === 'topo') await onTopo(m.topo)
      else if (m.type === 'snapshot') await onSnapshot(m)
      else if (m.type === 'batch') onBatch(m.changes)
      else if (m.type === 'error') status(m.message, 'closed')
    })
  }
  ws.onclose = () => {
    status('disconnected from nsdn lab serve; retrying…', 'closed')
    setTimeout(connect, 2000)
  }
}

/** Lay out and draw a topology unless it is the one drawn (a reconnect); true when drawn anew. */
async function onTopo(topo) {
  if (S.topo && JSON.stringify(S.topo) === JSON.stringify(topo)) return false
  S.topo = topo
  status('laying out…', 'connecting')
  drawGraph(await layout(topo))
  drawChecks()
  $('#status').dataset.layoutMs = String(S.layoutMs)
  status(`layout ${S.layoutMs} ms (elk) · reading the kernel's state…`)
  return true
}

async function onSnapshot(m) {
  S.ifs.clear()
  S.names.clear()
  S.routes.clear()
  for (const i of m.ifs) putIf(i)
  for (const r of m.routes) {
    if (!S.routes.has(r.ns)) S.routes.set(r.ns, [])
    S.routes.get(r.ns).push(r)
  }
  // drawn anew: drawGraph coloured it from the state above; else colour what is drawn
  if (!(await onTopo(m.topo))) {
    for (const id of S.links.keys()) drawLinkState(id)
    for (const id of S.nodes.keys()) drawNodeState(id)
  }
  S.dirty.links.clear()
  S.dirty.rates.clear()
  S.dirty.nodes.clear()
  status('', 'live')
  statusLine()
  // The same selection keeps its panel, so a form being filled in stays; its live part is new.
  const sel = S.selected
  if (!sel) return
  const still = sel.type === 'link' ? S.links.has(sel.id) : S.nodes.has(sel.id)
  if (still && $('#tab-details').dataset.sel === selKey(sel)) drawDetailsLive()
  else drawDetails()
}

const m = /^\/lab\/([^/]+)$/.exec(location.pathname)
if (m) void openLab(decodeURIComponent(m[1]))
else void showList()
