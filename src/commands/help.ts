import * as Args from '@oclif/core/args'
import {loadHelpClass} from '@oclif/core/help'

import {BaseCommand} from '../cli/base-command.js'

/**
 * `repl help [COMMAND]`, as oclif's help plugin has it, but part of the CLI: loading a plugin
 * cost every start-up, whatever the command, a search for its package and more files read.
 */
export default class Help extends BaseCommand {
  static override summary = 'Display help for repl or one of its commands.'
  static override examples = ['<%= config.bin %> <%= command.id %> basebackup', '<%= config.bin %> <%= command.id %>']
  static override args = {command: Args.string({description: 'Command to show help for.', required: false})}
  static override strict = false

  async run(): Promise<void> {
    const {argv} = await this.parse(Help)
    const HelpClass = await loadHelpClass(this.config)
    await new HelpClass(this.config).showHelp(argv as string[])
  }
}
