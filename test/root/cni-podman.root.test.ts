/**
 * A real CNI client: podman 4 with its CNI backend runs a container from a local root
 * filesystem on a conflist of nsdn-bridge, nsdn-portmap and the reference tuning plugin; the
 * container pings its gateway and `podman run --rm` leaves nothing (scripts/podman-cni.sh
 * checks it all), once through the agent and once through Node.
 */
import { sandboxThisFile } from '../helpers/sandbox.js'
sandboxThisFile()

import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import path from 'node:path'
import { test } from 'node:test'
import { netnsNames, strayLinks } from '../helpers/kernel.js'

const SCRIPT = path.resolve(__dirname, '../../../scripts/podman-cni.sh')
const missing = ['podman', 'crun', 'conmon', 'busybox'].filter(
  (p) => spawnSync('sh', ['-c', `command -v ${p}`], { stdio: 'ignore' }).status !== 0,
)
const skip = missing.length
  ? `not installed: ${missing.join(', ')} (scripts/setup.sh installs them)`
  : false

for (const mode of ['agent', 'node'])
  test(
    `podman runs a container on nsdn-bridge and it pings its gateway (${mode})`,
    { skip },
    () => {
      const r = spawnSync('bash', [SCRIPT, mode], { encoding: 'utf8', timeout: 240_000 })
      assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`)
      assert.match(r.stdout, /inet 10\.216\.0\.\d+\/24/)
      assert.match(r.stdout, / 0% packet loss/)
      assert.match(r.stdout, new RegExp(`podman-cni: ok \\(${mode}\\)`))
      assert.deepEqual(netnsNames(), [])
      assert.deepEqual(strayLinks(), [])
    },
  )
