// The CNI plugins' Node fallback as one file plus V8's code cache of it (src/cni/fallback.ts):
// run by scripts/setup.sh after tsc. koffi and pino stay outside (native addon; pino loads
// only when logging), and so does netlink's raw.js, which finds its addon from its __dirname.
// The netlink package's index also loads nl80211 and WireGuard structs nsdn never uses: the
// bundle takes only the parts src/netlink imports (NETLINK_PARTS).
'use strict'
const fs = require('node:fs')
const path = require('node:path')
const esbuild = require('esbuild')

const root = path.resolve(__dirname, '..')
const cni = path.join(root, 'dist/src/cni')

const NETLINK_PARTS = `
const n = require('netlink/dist/netlink')
module.exports = {
  NetlinkSocket: n.NetlinkSocket,
  createNetlink: n.createNetlink,
  createGenericNetlink: require('netlink/dist/genl/genl').createGenericNetlink,
  rt: require('netlink/dist/rt/structs'),
  genl: require('netlink/dist/genl/structs'),
}`

const outside = {
  name: 'outside',
  setup(b) {
    b.onResolve({ filter: /^netlink$/ }, (a) =>
      a.importer.includes('/dist/src/netlink/')
        ? { path: 'netlink', namespace: 'parts' }
        : undefined,
    )
    b.onLoad({ filter: /.*/, namespace: 'parts' }, () => ({
      contents: NETLINK_PARTS,
      resolveDir: root,
      loader: 'js',
    }))
    b.onResolve({ filter: /^\.\/raw$/ }, (a) =>
      a.importer.includes('/node_modules/netlink/')
        ? { path: 'netlink/dist/raw.js', external: true }
        : undefined,
    )
  },
}

/** Every name src/netlink imports from 'netlink' must be among NETLINK_PARTS. */
function checkParts() {
  const dir = path.join(root, 'src/netlink')
  const used = new Set()
  for (const f of fs.readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
    const text = fs.readFileSync(path.join(dir, f), 'utf8')
    for (const m of text.matchAll(/import\s*\{([^}]*)\}\s*from\s*'netlink'/g))
      for (const name of m[1].split(',').map((s) => s.trim()))
        if (name && !name.startsWith('type ')) used.add(name)
  }
  const missing = [...used].filter((n) => !new RegExp(`\\b${n}:`).test(NETLINK_PARTS))
  if (missing.length)
    throw new Error(`src/netlink imports ${missing.join(', ')} from netlink: add to NETLINK_PARTS`)
}

async function main() {
  checkParts()
  await esbuild.build({
    entryPoints: [path.join(cni, 'bundle.js')],
    outfile: path.join(cni, 'fallback.bundle.js'),
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    external: ['koffi', 'pino'],
    plugins: [outside],
    minify: true,
    logLevel: 'error',
  })
  const { bytes } = await require(path.join(cni, 'fallback.js')).buildCache()
  if (!bytes) throw new Error('no code cache')
}

main().catch((e) => {
  console.error(`bundle-cni: ${e.stack || e}`)
  process.exit(1)
})
