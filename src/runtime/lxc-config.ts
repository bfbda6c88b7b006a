/**
 * `nsdn create --from-lxc NAME CONFIG`: an LXC container config (`key = value` lines) as an
 * nsdn spec. Read: lxc.uts.name, lxc.rootfs.path, lxc.net.N.{type,link,ipv4.address,
 * ipv4.gateway,hwaddr,name,flags}, lxc.cgroup.* / lxc.cgroup2.* limits, lxc.mount.entry (bind
 * and tmpfs), lxc.environment, lxc.init.cmd / lxc.execute.cmd, lxc.init.cwd. Every other key
 * is returned by name in `unsupported`, so the caller can say what it ignored.
 * @module
 */
import { ConfigError } from '../errors.js'

export interface LxcResult {
  /** A raw spec for parseSpec (name, limits, networks, mounts, ...). */
  spec: Record<string, unknown>
  /** lxc.rootfs.path: a root filesystem directory to import as an image (the caller does). */
  rootfsPath?: string
  /** Keys read but not supported, with their line: "lxc.apparmor.profile (line 3)". */
  unsupported: string[]
}

/** lxc.cgroup(2).KEY -> the limits field and how to read the value. */
const CGROUP_KEYS: Record<string, [string, (v: string) => unknown]> = {
  'memory.limit_in_bytes': ['memory', (v) => v],
  'memory.max': ['memory', (v) => v],
  'memory.memsw.limit_in_bytes': ['memorySwap', (v) => v],
  'cpu.shares': [
    'cpuWeight',
    (v) => Math.max(1, Math.round(1 + ((Number(v) - 2) * 9999) / 262142)),
  ],
  'cpu.weight': ['cpuWeight', (v) => v],
  'cpuset.cpus': ['cpusetCpus', (v) => v],
  'cpuset.mems': ['cpusetMems', (v) => v],
  'pids.max': ['pids', (v) => v],
  'cpu.max': [
    'cpus',
    (v) => {
      const [q, p = '100000'] = v.split(/\s+/)
      return Number(q) / Number(p)
    },
  ],
}

export function specFromLxc(text: string, file: string): LxcResult {
  const spec: Record<string, unknown> = {}
  const limits: Record<string, unknown> = {}
  const nets = new Map<string, Record<string, string>>()
  const mounts: unknown[] = []
  const env: string[] = []
  const unsupported: string[] = []
  let rootfsPath: string | undefined
  let quota: number | undefined
  let period = 100000
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim()
    if (!line || line.startsWith('#')) continue
    const where = `${file}:${i + 1}`
    const eq = line.indexOf('=')
    if (eq < 0) throw new ConfigError(`"${line}" is not "key = value"`, where)
    const key = line.slice(0, eq).trim()
    const value = line.slice(eq + 1).trim()
    const net = /^lxc\.net\.(\d+)\.(.+)$/.exec(key)
    const cg = /^lxc\.cgroup2?\.(.+)$/.exec(key)
    if (key === 'lxc.uts.name') spec.hostname = value
    else if (key === 'lxc.rootfs.path') {
      // "dir:/path" or a plain path: an image is imported from it by name
      rootfsPath = value.replace(/^dir:/, '')
    } else if (net) {
      const n = nets.get(net[1]!) ?? {}
      n[net[2]!] = value
      nets.set(net[1]!, n)
    } else if (cg && cg[1] === 'cpu.cfs_quota_us') quota = Number(value)
    else if (cg && cg[1] === 'cpu.cfs_period_us') period = Number(value)
    else if (cg && CGROUP_KEYS[cg[1]!]) {
      const [field, conv] = CGROUP_KEYS[cg[1]!]!
      limits[field] = conv(value)
    } else if (key === 'lxc.mount.entry') {
      // fstab shape: SOURCE TARGET TYPE OPTIONS [DUMP PASS]; TARGET is relative to the rootfs
      const [source = '', target = '', type = '', opts = ''] = value.split(/\s+/)
      const o = opts.split(',')
      const dst = '/' + target.replace(/^\/+/, '')
      if (type === 'tmpfs') mounts.push({ type: 'tmpfs', target: dst })
      else if (o.includes('bind') || o.includes('rbind'))
        mounts.push({ type: 'bind', source, target: dst, readonly: o.includes('ro') })
      else unsupported.push(`lxc.mount.entry of type ${type} (line ${i + 1})`)
    } else if (key === 'lxc.environment') env.push(value)
    else if (key === 'lxc.init.cmd' || key === 'lxc.execute.cmd') spec.command = value.split(/\s+/)
    else if (key === 'lxc.init.cwd') spec.cwd = value
    else unsupported.push(`${key} (line ${i + 1})`)
  }
  if (quota !== undefined && quota > 0) limits.cpus = quota / period
  if (Object.keys(limits).length) spec.limits = limits
  if (mounts.length) spec.mounts = mounts
  if (env.length) spec.env = env
  const networks: unknown[] = []
  for (const [idx, n] of [...nets.entries()].sort()) {
    if (n.type !== 'veth') {
      unsupported.push(`lxc.net.${idx}.type = ${n.type ?? '(none)'} (only veth)`)
      continue
    }
    if (!n.link) {
      unsupported.push(`lxc.net.${idx} without a link (bridge)`)
      continue
    }
    // a veth on a Linux bridge: the bridge driver, with the addresses LXC would set statically
    const conf: Record<string, unknown> = { name: `lxc-${n.link}`, bridge: n.link }
    if (n['ipv4.address']) {
      const ipam: Record<string, unknown> = {
        type: 'static',
        addresses: [{ address: n['ipv4.address'] }],
      }
      if (n['ipv4.gateway'] && n['ipv4.gateway'] !== 'auto')
        ipam.routes = [{ dst: '0.0.0.0/0', gw: n['ipv4.gateway'] }]
      conf.ipam = ipam
    }
    for (const k of Object.keys(n))
      if (!['type', 'link', 'ipv4.address', 'ipv4.gateway', 'hwaddr', 'name', 'flags'].includes(k))
        unsupported.push(`lxc.net.${idx}.${k}`)
    networks.push({
      driver: 'bridge',
      conf,
      ifname: n.name ?? `eth${idx}`,
      ...(n.hwaddr ? { mac: n.hwaddr } : {}),
    })
  }
  if (networks.length) spec.networks = networks
  return { spec, unsupported, ...(rootfsPath ? { rootfsPath } : {}) }
}
