import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { loadDotEnv } from '../config.ts';
import { isExposed } from '../lib/errors.ts';
import { clientCommands } from './clients.ts';
import { devCommands } from './dev.ts';
import { inFlags } from './kit.ts';
import { mailCommands } from './mail.ts';
import { roleCommands } from './roles.ts';
import { resourceCommands } from './resources.ts';
import { systemCommands } from './system.ts';
import { upstreamCommands } from './upstreams.ts';
import { userCommands } from './users.ts';

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** The `idp` command: one file per resource, as the admin API (src/http/admin/) has. */
export function buildCli(): Command {
  const program = new Command('idp')
    .description('Administer the identity provider. Reads the same environment as the server (DATABASE_URL, ...).')
    .version(VERSION, '-V, --version', 'print the version')
    .showHelpAfterError()
    .exitOverride();
  systemCommands(program);
  userCommands(program);
  upstreamCommands(program);
  resourceCommands(program);
  roleCommands(program);
  clientCommands(program);
  mailCommands(program);
  devCommands(program);
  return program;
}

export async function runCli(argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  try {
    await buildCli().parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has already printed the usage error (or the help text, which is a success).
      return err.exitCode === 0 ? 0 : 2;
    }
    // An error is shaped like the admin API's, and names the flags the person typed.
    const known = isExposed(err);
    const code = known ? err.code : 'server_error';
    const description = known ? inFlags(err.message) : 'unexpected error, see the details above';
    if (!known) console.error(err);
    process.stderr.write(json ? `${JSON.stringify({ error: code, error_description: description })}\n` : `idp: ${description}\n`);
    return 1;
  }
}

loadDotEnv();
process.exitCode = await runCli(process.argv.slice(2));
