/**
 * Container nodes, kernel-free: how a node becomes a container (names, defaults, command, env),
 * the plan step and its explain line, refusals placed in the file (bad limits, no image, an image
 * not imported), and containerlab linux nodes with an imported image.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, test } from 'node:test'
import { ConfigError } from '../../src/errors.js'
import { checkContainers } from '../../src/lab/containers.js'
import { loadText } from '../../src/lab/load.js'
import { plan } from '../../src/lab/plan.js'
import { resolve } from '../../src/lab/resolve.js'
import { formatOp } from '../../src/teach/commands.js'

// An image store with one image, "busybox" (its layers are never read here).
const lib = fs.mkdtempSync(path.join(os.tmpdir(), 'nsdn-lab-ctr-'))
process.env.NSDN_LIB_DIR = lib
fs.mkdirSync(path.join(lib, 'images'))
fs.writeFileSync(
  path.join(lib, 'images', 'busybox.json'),
  JSON.stringify({ name: 'busybox', layers: [], created: '', source: '/x' }),
)
after(() => fs.rmSync(lib, { recursive: true, force: true }))

const LAB = `name: ctr
defaults: { image: busybox, limits: { memory: 32M, pids: 64 }, env: { A: 1 } }
nodes:
  br0: { kind: bridge, subnet: 10.19.0.0/24 }
  web:
    kind: container
    command: "httpd -f"
    env: [B=2]
    limits: { pids: 10 }
  c2: { kind: container, hostname: client }
  h1: { kind: host }
links:
  - endpoints: ["web:eth0", "br0"]
  - endpoints: ["c2:eth0", "br0"]
  - endpoints: ["h1:eth0", "br0"]
`
const lab = (text: string): ReturnType<typeof resolve> => resolve(loadText(text, 'lab.yaml'))

function refusal(fn: () => unknown): ConfigError {
  try {
    fn()
  } catch (err) {
    assert.ok(err instanceof ConfigError, `a ConfigError, got ${String(err)}`)
    assert.ok(err.hint, 'with a hint')
    return err
  }
  assert.fail('no error')
}

test('a container node: named like a host namespace, defaults merged, command and env', () => {
  const l = lab(LAB)
  const web = l.nodes.find((n) => n.name === 'web')!
  const c2 = l.nodes.find((n) => n.name === 'c2')!
  assert.equal(web.kind, 'container')
  assert.equal(web.ns, 'ctr-web')
  assert.deepEqual(
    { ...web.container, imageAt: undefined, cpusetAt: undefined },
    {
      name: 'ctr-web',
      image: 'busybox',
      hostname: 'web',
      command: ['sh', '-c', 'httpd -f'],
      env: ['A=1', 'B=2'],
      limits: { memory: '32M', pids: 10 },
      imageAt: undefined,
      cpusetAt: undefined,
    },
  )
  assert.deepEqual(c2.container?.command, ['sleep', 'infinity'])
  assert.equal(c2.container?.hostname, 'client')
  assert.equal(l.nodes.find((n) => n.name === 'h1')!.container, undefined)
})

test('the plan starts each container first, journaled; its links wait for it', () => {
  const steps = plan(lab(LAB), { ovsRunning: false, datapath: 'netdev' })
  const run = steps.find((s) => s.op.kind === 'container.run' && s.op.name === 'ctr-web')!
  assert.deepEqual(run.creates, { container: 'ctr-web' })
  assert.equal(
    formatOp(run.op),
    'nsdn run -d --name ctr-web --image busybox --hostname web --memory 32M --pids 10 ' +
      "-e A=1 -e B=2 -- sh -c 'httpd -f'",
  )
  const veth = steps.find((s) => s.op.kind === 'link.add.veth' && s.op.peerNs === 'ctr-web')!
  assert.ok(veth.deps.includes(run.id))
  assert.ok(!steps.some((s) => s.op.kind === 'netns.add' && s.op.name === 'ctr-web'))
})

test('a bad limit is refused at its line, by the runtime rules', () => {
  const e = refusal(() => lab(LAB.replace('limits: { pids: 10 }', 'limits: { memory: lots }')))
  assert.match(e.message, /^lab\.yaml:9:\d+ nodes\.web\.limits\.memory: invalid size "lots"/)
  assert.match(e.hint!, /64M/)
})

test('a container node without an image is refused', () => {
  const e = refusal(() => lab(LAB.replace('image: busybox, ', '')))
  assert.match(e.message, /nodes\.web: container node "web" names no image/)
  assert.match(e.hint!, /nsdn image import NAME DIR/)
})

test('an image not imported: preflight names the file line and how to import it', () => {
  const l = lab(
    LAB.replace('kind: container, hostname', 'kind: container, image: alpine, hostname'),
  )
  const e = refusal(() => checkContainers(l.nodes.flatMap((n) => n.container ?? [])))
  assert.match(e.message, /^lab\.yaml:10:\d+ nodes\.c2\.image: image "alpine" is not imported/)
  assert.match(e.hint!, /^nsdn image import alpine DIR/)
  // the defaults' image, when the node names none: placed at defaults.image
  const d = lab(LAB.replace('image: busybox', 'image: nothere'))
  const e2 = refusal(() => checkContainers(d.nodes.flatMap((n) => n.container ?? [])))
  assert.match(e2.message, /^lab\.yaml:2:\d+ defaults\.image: image "nothere" is not imported/)
  checkContainers(lab(LAB).nodes.flatMap((n) => n.container ?? [])) // all imported: passes
})

test('a cpuset naming a cpu this machine lacks is refused at its line', () => {
  const l = lab(LAB.replace('limits: { pids: 10 }', 'limits: { cpusetCpus: "4095" }'))
  const e = refusal(() => checkContainers(l.nodes.flatMap((n) => n.container ?? [])))
  assert.match(e.message, /^lab\.yaml:9:\d+ nodes\.web\.limits\.cpusetCpus: cpu 4095 is not/)
})

test('containerlab: a linux node with an imported image becomes a container node', () => {
  const l = lab(`name: two
topology:
  kinds:
    linux: { image: "docker.io/library/busybox:1.36", env: { ROLE: x } }
  nodes:
    a: { kind: linux, cmd: "httpd -f" }
    b: { kind: linux, image: "alpine:3" }
  links:
    - endpoints: ["a:eth1", "b:eth1"]
`)
  const a = l.nodes.find((n) => n.name === 'a')!
  assert.equal(a.kind, 'container')
  assert.deepEqual(a.container?.command, ['sh', '-c', 'httpd -f'])
  assert.deepEqual(a.container?.env, ['ROLE=x'])
  assert.equal(a.container?.image, 'busybox')
  assert.equal(l.nodes.find((n) => n.name === 'b')!.kind, 'host')
  assert.ok(
    l.notes.some((n) => /node "a": image ".*busybox:1.36" is the imported image "busybox"/.test(n)),
  )
  assert.ok(
    l.notes.some((n) => /node "b": image "alpine:3" not imported: became a namespace/.test(n)),
  )
  assert.ok(!l.notes.some((n) => /"(cmd|image)": ignored/.test(n)), l.notes.join('\n'))
})
