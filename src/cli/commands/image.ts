/**
 * `nsdn image import|list|rm`: images without a registry (a root filesystem directory or
 * tarball becomes a layer; `nsdn commit` adds layers over it).
 * @module
 */
import type { Command } from 'commander'
import { examples, globals, needsRoot } from '../context.js'
import { printJson, printTable } from '../output.js'
import { noDryRun } from './container.js'

const images = (): Promise<typeof import('../../runtime/image.js')> =>
  import('../../runtime/image.js')

export function register(program: Command): void {
  const image = program.command('image').description('container images: root filesystems as layers')
  image.hook('preAction', (_i, action) => {
    if (action.name() !== 'list') noDryRun(action)
  })
  examples(image, 'nsdn image import busybox ./rootfs', 'nsdn image list', 'nsdn image rm busybox')

  const imp = image
    .command('import')
    .description('make an image from a root filesystem directory or a tarball of one')
    .argument('<name>', 'image name')
    .argument('<source>', 'directory or tarball (.tar, .tar.gz, .tar.xz)')
    .action(async (name: string, source: string) => {
      ;(await images()).importImage(name, source)
    })
  examples(
    needsRoot(imp),
    'nsdn image import busybox ./rootfs',
    'nsdn image import debian ./debian.tar.gz',
  )

  const list = image
    .command('list')
    .alias('ls')
    .description('list images')
    .action(async (_o: unknown, cmd: Command) => {
      const all = (await images()).listImages()
      if (globals(cmd).json) return printJson(all)
      printTable(
        ['NAME', 'LAYERS', 'CREATED', 'SOURCE'],
        all.map((i) => [i.name, i.layers.length, i.created, i.source]),
      )
    })
  examples(list, 'nsdn image list')

  const rm = image
    .command('rm')
    .description('remove an image, and its layers no other image or container uses')
    .argument('<name>', 'image name')
    .action(async (name: string) => {
      ;(await images()).removeImage(name)
    })
  examples(needsRoot(rm), 'nsdn image rm busybox')
}
