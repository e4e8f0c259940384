import { Command } from 'commander';
import { env } from '../../config/env.js';
import { SCOPES } from '../../service/farm-db.js';
import type { CliContext } from '../context.js';

/** `kfarm tokens create|list|revoke`: the API tokens of `kfarm serve`, in <state>/service/farm.db. */
export function tokensCommand(ctx: CliContext): Command {
  const actions = () => import('../actions/tokens.js');
  const tokens = new Command('tokens').description(`the API tokens of kfarm serve (kept hashed in ${env.stateDir}/service/farm.db)`);
  tokens
    .command('create')
    .description('make a token for a client and print it on stdout: it is shown this once only')
    .argument('<name>', 'who the token is for, e.g. ci-runner')
    .requiredOption('--scope <list>', `what it may do, comma-separated: ${SCOPES.join(', ')}`)
    .action(async (name: string, opts: { scope: string }) => (await actions()).tokensCreateAction(ctx, name, opts));
  tokens
    .command('list')
    .description('every token: id, name, scopes, created, last used (never the token itself)')
    .option('--json', 'one JSON array on stdout')
    .action(async (opts: { json?: boolean }) => (await actions()).tokensListAction(ctx, opts));
  tokens
    .command('revoke')
    .description('remove a token: requests with it are refused from now on')
    .argument('<id>', 'the id `kfarm tokens list` shows (t-...)')
    .action(async (id: string) => (await actions()).tokensRevokeAction(ctx, id));
  // main.ts makes top-level commands throw instead of exiting; a subcommand's usage error (a
  // missing --scope) must too, to end with status 2 (bad input) rather than commander's 1
  for (const cmd of tokens.commands) cmd.exitOverride();
  return tokens;
}
