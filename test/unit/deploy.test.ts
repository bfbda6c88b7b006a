/** The Kubernetes recipe (deploy/kubernetes): the fields a kubelet and a CNI runtime need. */
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { parseAllDocuments } from 'yaml'
import { parseConfList } from '../../src/cni/exec.js'
import { PLUGIN_TYPES } from '../../src/cni/plugins.js'
import { compareVersions } from '../../src/cni/spec.js'

// dist/test/unit -> the repository
const file = path.resolve(__dirname, '../../../deploy/kubernetes/nsdn-cni.yaml')

type Obj = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

function docs(): Obj[] {
  const all = parseAllDocuments(fs.readFileSync(file, 'utf8'))
  for (const d of all) assert.deepEqual(d.errors, [], 'YAML errors')
  return all.map((d) => d.toJS() as Obj)
}

const byKind = (kind: string): Obj => {
  const d = docs().find((x) => x.kind === kind)
  assert.ok(d, `no ${kind}`)
  return d
}

test('the DaemonSet: apps/v1, selector matching its pods, on every node, host network', () => {
  const ds = byKind('DaemonSet')
  assert.equal(ds.apiVersion, 'apps/v1')
  assert.ok(ds.metadata.name && ds.metadata.namespace)
  const labels = ds.spec.template.metadata.labels as Record<string, string>
  for (const [k, v] of Object.entries(ds.spec.selector.matchLabels as Record<string, string>))
    assert.equal(labels[k], v, `selector ${k}`)
  const pod = ds.spec.template.spec
  assert.equal(pod.hostNetwork, true)
  assert.ok(
    (pod.tolerations as Obj[]).some((t) => t.operator === 'Exists' && t.key === undefined),
    'tolerates every taint (nodes are NotReady until a CNI is there)',
  )
  assert.equal(pod.priorityClassName, 'system-node-critical')
})

test('mounts: every volumeMount names a volume; the CNI host paths are where the installer writes', () => {
  const pod = byKind('DaemonSet').spec.template.spec
  const volumes = new Map((pod.volumes as Obj[]).map((v) => [v.name as string, v]))
  const containers = [...(pod.initContainers as Obj[]), ...(pod.containers as Obj[])]
  for (const c of containers) {
    assert.ok(c.image, `${c.name}: image`)
    for (const m of c.volumeMounts as Obj[]) assert.ok(volumes.has(m.name), `${c.name}: ${m.name}`)
  }
  const hostPathOf = (mountPath: string, c: Obj): string | undefined => {
    const m = (c.volumeMounts as Obj[]).find((x) => x.mountPath === mountPath)
    return m ? volumes.get(m.name)?.hostPath?.path : undefined
  }
  const install = (pod.initContainers as Obj[]).find((c) => c.name === 'install')!
  const script = [...(install.command ?? []), ...(install.args ?? [])].join(' ')
  const dir = /cni install (\S+)/.exec(script)?.[1]
  assert.ok(dir, 'the init container runs nsdn cni install DIR')
  assert.equal(hostPathOf(dir, install), '/opt/cni/bin', 'plugins land in the host /opt/cni/bin')
  // Where the conflist ends up: the last path the script writes it to.
  const conflist = [...script.matchAll(/(\S+)\/10-nsdn\.conflist(\s|$)/g)].at(-1)?.[1]
  assert.equal(hostPathOf(conflist!, install), '/etc/cni/net.d', 'conflist in /etc/cni/net.d')
  // The fallback node and entry the installer names exist on the host where it copies them.
  assert.match(script, /--node \/opt\/nsdn\/node/)
  assert.equal(hostPathOf('/host/opt/nsdn', install), '/opt/nsdn')
  // The agent listens where the installed shims look, a directory shared with the host.
  const agent = (pod.containers as Obj[]).find((c) => c.name === 'agent')!
  const sock = (agent.args as string[])[(agent.args as string[]).indexOf('--socket') + 1]!
  assert.match(script, new RegExp(`--socket ${sock}`))
  assert.equal(hostPathOf(path.dirname(sock), agent), path.dirname(sock))
  assert.equal(agent.securityContext.privileged, true)
  assert.equal(hostPathOf('/var/lib/cni', agent), '/var/lib/cni', 'leases survive the pod')
})

test('the conflist: valid for the runtime side, 1.0.0 at most (runtimes that predate 1.1.0), nsdn types', () => {
  const cm = byKind('ConfigMap')
  const ds = byKind('DaemonSet')
  const cfgVol = (ds.spec.template.spec.volumes as Obj[]).find((v) => v.configMap)
  assert.equal(cfgVol?.configMap.name, cm.metadata.name)
  const text = cm.data['10-nsdn.conflist'] as string
  const list = parseConfList(Buffer.from(text))
  assert.ok(compareVersions(list.cniVersion, '1.0.0') <= 0)
  for (const p of list.plugins)
    assert.ok((PLUGIN_TYPES as readonly string[]).includes(String(p.type)), String(p.type))
  const ipam = (list.plugins[0] as Obj).ipam
  assert.ok(PLUGIN_TYPES.includes(ipam.type), 'the ipam type is installed too')
})
