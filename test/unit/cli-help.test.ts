import assert from 'node:assert/strict'
import { test } from 'node:test'
import { allCommands, buildProgram } from '../../src/cli/program.js'

test('every command has a description and an Examples section in its help', () => {
  const cmds = allCommands(buildProgram())
  assert.ok(cmds.length >= 15, `only ${cmds.length} commands`)
  for (const cmd of cmds) {
    let help = ''
    cmd.configureOutput({ writeOut: (t) => void (help += t) })
    cmd.outputHelp()
    assert.ok(cmd.description(), `"${cmd.name()}" has no description`)
    assert.match(help, /\nExamples:\n {2}(\$ nsdn|\$ sudo nsdn|# )/, `"${cmd.name()}" help`)
  }
})

test('the command groups and their commands are the iproute2-like interface', () => {
  const names = allCommands(buildProgram())
    .map((c) => {
      const path: string[] = []
      for (let x: typeof c | null = c; x?.parent; x = x.parent) path.unshift(x.name())
      return path.join(' ')
    })
    .filter(Boolean)
  for (const want of [
    'netns add',
    'netns del',
    'netns list',
    'netns exec',
    'link add',
    'link set',
    'link del',
    'link list',
    'addr add',
    'addr del',
    'addr list',
    'route add',
    'route del',
    'route list',
    'sandbox',
  ])
    assert.ok(names.includes(want), `missing "${want}" in ${names.join(', ')}`)
})
