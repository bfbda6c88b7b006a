/**
 * Container nodes for real: scenario 09 deploys (busybox containers of nsdn's runtime and a host
 * on a bridge), its checks pass, a container's PID 1 is nsdn-init, `lab exec` lands in its mount
 * namespace, traffic crosses, and destroy leaves no container state, cgroup, overlay mount, netns
 * or link; a deploy killed inside the container's create and start is destroyed clean; an image
 * not imported is refused before anything is made; a containerlab node with an imported image
 * is a container.
 */
import { sandboxThisFile } from '../helpers/sandbox.js'
sandboxThisFile()

import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { Rtnl } from '../../src/netlink/rtnl.js'
import * as rt from '../../src/runtime/index.js'
import { nsdn, nsdnChild, ok } from '../helpers/cli.js'
import { ipAddrs, ping } from '../helpers/kernel.js'
import { assertNoLab, labFiles } from '../helpers/lab.js'
import { busyboxRoot, runtimeTestFile } from '../helpers/runtime.js'

runtimeTestFile()

const FILE = path.resolve(__dirname, '../../../scenarios/09-containers.yaml')
const files = labFiles()

before(() => {
  rt.importImage('busybox', busyboxRoot())
})

after(async () => {
  Rtnl.closeAll()
  await assertNoLab('the end', { containers: true })
})

test('09: containers deploy, pass the checks, run nsdn-init as PID 1, and destroy to nothing', async () => {
  assert.match(ok(['lab', 'deploy', FILE]).stdout, /created, ready/)
  assert.match(ok(['lab', 'verify', 'ctr']).stdout, /all 3 checks passed/)

  const inspect = JSON.parse(ok(['--json', 'lab', 'inspect', 'ctr']).stdout) as {
    nodes: { node: string; netns: string; container?: { status: string; pid?: number } }[]
  }
  const web = inspect.nodes.find((n) => n.node === 'web')!
  assert.equal(web.container?.status, 'running')
  assert.equal(web.netns, 'ctr-web')
  const pid = web.container!.pid!
  // the host's view: the pid inspect shows is nsdn-init, in its own mount namespace
  assert.equal(fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim(), 'nsdn-init')
  assert.notEqual(fs.readlinkSync(`/proc/${pid}/ns/mnt`), fs.readlinkSync('/proc/self/ns/mnt'))
  assert.match(ok(['lab', 'inspect', 'ctr']).stdout, /^web\s+container \(running, pid \d+\)/m)
  assert.equal(inspect.nodes.find((n) => n.node === 'h1')!.container, undefined)

  // lab exec: inside every namespace of the container, not only its netns
  const inside = ok([
    'lab',
    'exec',
    'ctr',
    'web',
    '--',
    'sh',
    '-c',
    'cat /proc/1/comm; readlink /proc/self/ns/mnt; ls /bin/busybox; hostname',
  ]).stdout.split('\n')
  assert.equal(inside[0], 'nsdn-init', 'PID 1 of its PID namespace')
  assert.equal(inside[1], fs.readlinkSync(`/proc/${pid}/ns/mnt`), "the container's mount ns")
  assert.equal(inside[2], '/bin/busybox', "the image's busybox")
  assert.equal(inside[3], 'web', 'its hostname (the node name)')
  const c2 = ok(['lab', 'exec', 'ctr', 'c2', '--', 'hostname']).stdout.trim()
  assert.equal(c2, 'client')
  // a failing command's status comes back
  assert.equal(nsdn(['lab', 'exec', 'ctr', 'web', '--', 'sh', '-c', 'exit 7']).status, 7)

  // traffic: the host reaches the web container, the client fetches its page over the bridge
  const webAddr = ipAddrs('ctr-web').find((a) => a.startsWith('eth0 '))!
  assert.equal(webAddr, 'eth0 10.19.0.1/24', 'the pool address, read with ip from outside')
  assert.ok(ping('10.19.0.1', 'ctr-h1'), 'h1 pings web')
  const page = ok(['lab', 'exec', 'ctr', 'c2', '--', 'wget', '-qO-', 'http://10.19.0.1/index.html'])
  assert.equal(page.stdout, 'hello\n')
  // the limits reached the cgroups
  assert.equal(rt.info('ctr-web').limits.pids, 64)
  assert.equal(rt.cgroupOf('ctr-c2').stats().pids?.limit, 64)

  assert.match(ok(['lab', 'deploy', FILE]).stdout, /unchanged, nothing to do/)
  // a container that died makes the lab incomplete: deploy rebuilds it
  rt.kill('ctr-c2')
  assert.match(ok(['lab', 'deploy', FILE]).stdout, /rebuilt, ready/)
  assert.match(ok(['lab', 'verify', 'ctr']).stdout, /all 3 checks passed/)

  assert.match(ok(['lab', 'destroy', 'ctr']).stdout, /destroyed/)
  await assertNoLab('09 destroyed', { containers: true })
})

test('lab explain prints the containers as nsdn run -d, and their removal as nsdn rm -f', () => {
  const script = ok(['lab', 'explain', FILE]).stdout
  assert.match(
    script,
    /^nsdn run -d --name ctr-web --image busybox --hostname web --memory 32M --pids 64 -e ROLE=web -- sh -c /m,
  )
  assert.match(
    script,
    /^nsdn run -d --name ctr-c2 .*--hostname client .*--cpus 0\.5 .*-- sleep infinity$/m,
  )
  assert.match(script, /^#\s+nsdn rm -f ctr-web$/m)
  assert.doesNotMatch(script, /ip netns add ctr-web/)
  assert.doesNotMatch(script, /^#\s+ip netns del ctr-web$/m)
})

test('an image not imported is refused before anything is made, with the import hint', async () => {
  const text = fs.readFileSync(FILE, 'utf8').replace('image: busybox', 'image: alpine')
  const f = files.write('noimg.yaml', text)
  const r = nsdn(['lab', 'deploy', f])
  assert.equal(r.status, 78, r.stderr)
  assert.match(r.stderr, /noimg\.yaml:8:\d+ defaults\.image: image "alpine" is not imported/)
  assert.match(r.stderr, /hint: nsdn image import alpine DIR/)
  assert.equal(nsdn(['lab', 'validate', f]).status, 78)
  await assertNoLab('refused image', { containers: true })
})

test('a deploy killed inside a container create or start is destroyed, or re-deployed, clean', async () => {
  // Kill when each of these appears: the container's state (create), its netns (start, before
  // the lab's links), its port on the bridge (the links).
  const marks = [
    '/run/nsdn/containers/ctr-web',
    '/run/nsdn/containers/ctr-c2/state.json',
    '/run/netns/ctr-web',
    '/sys/class/net/ctr-c2-eth0',
  ]
  for (const [i, mark] of marks.entries()) {
    const child = nsdnChild(['lab', 'deploy', FILE])
    const exited = new Promise((r) => child.once('exit', r))
    let seen = false
    const end = Date.now() + 30_000
    while (!seen && child.exitCode === null && Date.now() < end) {
      seen = fs.existsSync(mark)
      if (!seen) await new Promise((r) => setImmediate(r))
    }
    child.kill('SIGKILL')
    await exited
    assert.ok(seen, `the deploy reached ${mark}`)
    if (i % 2 === 0) assert.equal(nsdn(['lab', 'destroy', 'ctr']).status, 0)
    else {
      const d = nsdn(['lab', 'deploy', FILE])
      assert.equal(d.status, 0, `re-deploy after a kill at ${mark}: ${d.stderr}`)
      assert.equal(nsdn(['lab', 'verify', 'ctr']).status, 0, `verify after a kill at ${mark}`)
      assert.equal(nsdn(['lab', 'destroy', 'ctr']).status, 0)
    }
    await assertNoLab(`killed at ${mark}`, { containers: true })
  }
})

test('containerlab: a linux node with an imported image is a container, others namespaces', async () => {
  const f = files.write(
    'two.clab.yml',
    `name: two
topology:
  nodes:
    a: { kind: linux, image: "busybox:latest", cmd: "sleep 1000" }
    b: { kind: linux, image: "alpine:3" }
  links:
    - endpoints: ["a:eth1", "b:eth1"]
`,
  )
  const d = ok(['lab', 'deploy', f])
  assert.match(d.stderr, /note: node "a": image "busybox:latest" is the imported image "busybox"/)
  assert.match(d.stderr, /note: node "b": image "alpine:3" not imported: became a namespace/)
  assert.equal(rt.info('two-a').status, 'running')
  assert.deepEqual(rt.info('two-a').command, ['sh', '-c', 'sleep 1000'])
  assert.throws(() => rt.info('two-b'), /no container named "two-b"/)
  assert.match(ok(['lab', 'exec', 'two', 'a', '--', 'ls', '/bin/busybox']).stdout, /busybox/)
  ok(['lab', 'destroy', f])
  await assertNoLab('clab', { containers: true })
})
