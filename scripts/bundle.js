// Setup's step after tsc: the modules of each latency-bound front (the CLI, the CNI plugins'
// Node fallback) as one file, dist/bundle/FRONT.js, plus V8's code cache of it; src/bundle.ts
// runs them. What stays outside: the native addons (koffi's and netlink's, required by path)
// and the packages only a rare path loads (the logger, the web server, the schema compiler,
// error positions).
// Each module keeps its own __dirname (files beside it: schema, plugins, page). The built-in
// drivers are handed to the registry as static requires, so that the bundle carries them
// instead of loading a second copy of nsdn from dist/. child_process (with the streams, net
// and dgram under it), net and crypto load on first use: most calls spawn nothing, use only
// isIP of net, which src/ip-text.ts answers without it, and hash only short names, which
// src/sha256.ts does.
'use strict'
const fs = require('node:fs')
const path = require('node:path')
const esbuild = require('esbuild')

const root = path.resolve(__dirname, '..')
const OUT = path.join(root, 'dist/bundle')
/** The bundle's __dirname -> the repository, in the code below. */
const ROOT_FROM_OUT = path.relative(OUT, root)
const FRONTS = { cli: 'dist/src/cli/bundle.js', cni: 'dist/src/cni/bundle.js' }
const OUTSIDE = ['pino', 'fastify', '@fastify/websocket', 'ws', 'ajv', 'yaml']
const LAZY = ['child_process', 'net', 'crypto']
/** Functions of lazy modules served without loading them (src/ip-text.ts, src/sha256.ts). */
const SERVED = { net: 'dist/src/ip-text.js', crypto: 'dist/src/sha256.js' }

// The netlink package's index also loads nl80211 and WireGuard structs nsdn never uses: the
// bundle takes only the parts src/netlink imports.
const NETLINK_PARTS = `
const n = require('netlink/dist/netlink')
module.exports = {
  NetlinkSocket: n.NetlinkSocket,
  createNetlink: n.createNetlink,
  createGenericNetlink: require('netlink/dist/genl/genl').createGenericNetlink,
  rt: require('netlink/dist/rt/structs'),
  genl: require('netlink/dist/genl/structs'),
}`

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

const rel = (file) => path.relative(root, file).split(path.sep).join('/')
const atRoot = (r) => `__nsdnRoot + ${JSON.stringify('/' + r)}`

/** The netlink addon's file, as node-gyp-build finds it, relative to netlink/dist/raw.js. */
function netlinkAddon(rawJs) {
  const pkg = path.resolve(path.dirname(rawJs), '..')
  const gyp = require(require.resolve('node-gyp-build', { paths: [pkg] }))
  return path.relative(path.dirname(rawJs), gyp.path(pkg))
}

/**
 * koffi's native module itself, as koffi's loader picks it on this machine (glibc or musl):
 * its loader (three files, and reading node's ELF header to tell the libc) costs more than
 * the addon. nsdn calls only the addon's functions (load, errno).
 */
function koffiAddon() {
  const koffi = require('koffi')
  const [addon, ...more] = Object.keys(require.cache).filter((f) => /\/koffi\.node$/.test(f))
  if (!addon || more.length || require(addon).version !== koffi.version)
    throw new Error('cannot tell which koffi.node koffi loaded: update scripts/bundle.js')
  return addon
}

const nsdn = {
  name: 'nsdn',
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
    b.onResolve({ filter: /^koffi$/ }, () => ({ path: 'koffi', namespace: 'addon' }))
    b.onLoad({ filter: /.*/, namespace: 'addon' }, () => ({
      contents: `module.exports = require(${atRoot(rel(koffiAddon()))})`,
      loader: 'js',
    }))
    const lazy = new RegExp(`^(node:)?(${LAZY.join('|')})$`)
    // the lazy module's own require, and those of the files serving part of it, get the real one
    const served = Object.values(SERVED).map((f) => path.join(root, f))
    b.onResolve({ filter: lazy }, (a) =>
      a.namespace === 'lazy' || served.includes(a.importer)
        ? undefined
        : { path: a.path.replace(/^node:/, ''), namespace: 'lazy' },
    )
    b.onLoad({ filter: /.*/, namespace: 'lazy' }, (a) => {
      const names = Object.keys(require(a.path))
      const own = SERVED[a.path]
      return {
        contents:
          `let m\nconst real = () => (m ??= require('node:${a.path}'))\n` +
          `const own = ${own ? `require('./${own}')` : '{}'}\n` +
          `for (const k of ${JSON.stringify(names)})\n` +
          '  Object.defineProperty(exports, k, {\n' +
          '    enumerable: true,\n' +
          '    get: k in own ? () => own[k] : () => real()[k],\n' +
          '  })\n',
        resolveDir: root,
        loader: 'js',
      }
    })
    b.onLoad({ filter: /\.c?js$/ }, (a) => {
      let text = fs.readFileSync(a.path, 'utf8')
      if (a.path.endsWith('/netlink/dist/raw.js')) {
        const call = "require('node-gyp-build')(__dirname + '/..')"
        if (!text.includes(call)) throw new Error(`${a.path}: no ${call}: update scripts/bundle.js`)
        text = text.replace(
          call,
          `require(__dirname + ${JSON.stringify('/' + netlinkAddon(a.path))})`,
        )
      }
      if (/\b__(dirname|filename)\b/.test(text))
        text =
          `var __dirname = ${atRoot(rel(path.dirname(a.path)))}, ` +
          `__filename = ${atRoot(rel(a.path))};\n${text}`
      return { contents: text, loader: 'js' }
    })
  },
}

/** The entry: the front's module, after the built-in drivers are handed to the registry. */
function entry(front) {
  const plugins = path.join(root, 'dist/plugins')
  const provide = fs
    .readdirSync(plugins)
    .filter((d) => fs.existsSync(path.join(plugins, d, 'index.js')))
    .map(
      (d) => `provideBuiltin(${JSON.stringify(d)}, () => require('./dist/plugins/${d}/index.js'))`,
    )
  return [
    "const { provideBuiltin } = require('./dist/src/drivers/registry.js')",
    ...provide,
    `module.exports = require('./${FRONTS[front]}')`,
  ].join('\n')
}

async function main() {
  checkParts()
  fs.rmSync(OUT, { recursive: true, force: true })
  const { buildCache } = require(path.join(root, 'dist/src/bundle.js'))
  for (const front of Object.keys(FRONTS)) {
    await esbuild.build({
      stdin: { contents: entry(front), resolveDir: root, sourcefile: `${front}-entry.js` },
      outfile: path.join(OUT, `${front}.js`),
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'cjs',
      external: OUTSIDE,
      plugins: [nsdn],
      banner: {
        js: `var __nsdnRoot = require('path').join(__dirname, ${JSON.stringify(ROOT_FROM_OUT)});`,
      },
      minifyWhitespace: true,
      minifySyntax: true,
      legalComments: 'none',
      logLevel: 'error',
    })
    const { bytes } = await buildCache(front, path.join(root, FRONTS[front]))
    if (!bytes) throw new Error(`no code cache for ${front}`)
  }
}

main().catch((e) => {
  console.error(`bundle: ${e.stack || e}`)
  process.exit(1)
})
