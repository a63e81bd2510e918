// gallery-bridge's command line: parses arguments (commander), runs a command, maps the
// outcome to the documented exit codes. The commands are thin; the work is in src/engine.

import { Command, CommanderError, Option } from 'commander';
import type { EvidenceLevel, ProviderModule } from '../providers/types.ts';
import { EVIDENCE_ORDER, StopRunError } from '../providers/types.ts';
import { PROVIDER_NAMES, loadProviders, loadedProviders, splitSpec } from '../providers/index.ts';
import { flushLines } from './lib/lines.ts';
import { reason } from './lib/redact.ts';
import path from 'node:path';
import { zoneProblem } from './media/zone.ts';
import type { LineSink } from './lib/lines.ts';
import type { AccountRun } from './commands/migrate.ts';

// Each command's module is imported when that command runs: `--help` and `status` start without
// loading the engine, the report writers or SQLite's statements they do not use.
const commands = {
  migrate: () => import('./commands/migrate.ts'),
  status: () => import('./commands/status.ts'),
  hash: () => import('./commands/hash.ts'),
  emulator: () => import('./commands/emulator.ts'),
  batch: () => import('./commands/batch.ts'),
  serve: () => import('./commands/serve.ts'),
  worker: () => import('./commands/worker.ts'),
};

export const EXIT = { ok: 0, partial: 1, usage: 2, credentials: 3, quota: 4, full: 5 } as const;

function evidence(v: string): EvidenceLevel {
  if (!EVIDENCE_ORDER.includes(v as EvidenceLevel)) throw new CommanderError(2, 'usage', `--delete-evidence must be one of ${EVIDENCE_ORDER.join(', ')}`);
  return v as EvidenceLevel;
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new CommanderError(2, 'usage', `expected a positive whole number, got "${v}"`);
  return n;
}

function time(v: string): Date {
  // "06:30" means the next 06:30 local time; anything else must parse as a date.
  const hm = /^(\d{1,2}):(\d{2})$/.exec(v);
  if (hm) {
    const d = new Date();
    d.setHours(Number(hm[1]), Number(hm[2]), 0, 0);
    if (d.getTime() <= Date.now()) d.setDate(d.getDate() + 1);
    return d;
  }
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) throw new CommanderError(2, 'usage', `cannot read "${v}" as a time (use HH:MM or an ISO date)`);
  return d;
}

function timeZone(v: string): string {
  const problem = zoneProblem(v);
  if (problem) throw new CommanderError(2, 'usage', problem);
  return v;
}

function addRunOptions(cmd: Command, providers: ProviderModule[]): Command {
  cmd
    .requiredOption('--from <source>', 'where items come from: folder:PATH, xiaomi')
    .requiredOption('--to <destination>', 'where they go: folder:PATH, onedrive:PATH, google-photos')
    .option('--state <file>', 'state database (created 0600)', 'gallery-bridge.db')
    .option('--delete-source', 'delete each item at the source once verified (see the safety rule)', false)
    .option('--delete-evidence <level>', 'weakest evidence that allows deletion: bytes, pixels or received', evidence, 'pixels' as EvidenceLevel)
    .option('--concurrency <n>', "items in flight at once (default: the providers' own, measured; plan shows it)", positiveInt)
    .option('--retries <n>', 'attempts per item in one run', positiveInt, 4)
    .option('--until <time>', 'stop cleanly at this time (HH:MM or ISO date); rerun to resume', time)
    .option('--layout <layout>', 'destination layout: album (one folder/album per album) or date (YYYY/MM)', 'album')
    // No default value here: reading the machine's zone loads ICU's zone data, 15 ms of every
    // start (--help included); a run reads it when it first needs it.
    .option(
      '--timezone <zone>',
      "time zone for capture times that carry no offset (file names, EXIF without OffsetTime, source dates): IANA name or +HH:MM (default: this machine's zone)",
      timeZone,
    )
    .option('--account <name>', 'which stored account to use', 'default')
    .option('--source-account <name>', 'stored account for the source (default: --account)')
    .option('--destination-account <name>', 'stored account for the destination (default: --account)')
    .option('--report <file>', 'write a report (.json, .csv or .html) when the run ends')
    .option('--verify-wait <seconds>', 'how long to wait for items the destination is still processing', positiveInt, 300)
    .option(
      '--source-may-be-empty',
      'go on when the source lists nothing while the state knows items there (you deleted them there): they count as gone; the default stops (is the card mounted?)',
      false,
    )
    .option('--json', 'machine-readable output on stdout (JSON lines)', false)
    .option('--verbose', 'more log lines', false);
  for (const p of providers)
    for (const o of p.cliOptions ?? [])
      if (!cmd.options.some((x) => x.flags === o.flags)) cmd.addOption(new Option(o.flags, `[${p.name}] ${o.description}`).default(o.defaultValue));
  return cmd;
}

/** `providers`: whose options the run commands take (a warm batch worker: only those its account names, as a process of its own would). */
export function buildProgram(providers: ProviderModule[] = loadedProviders()): Command {
  const program = new Command();
  program
    .name('gallery-bridge')
    .description('Move photos and videos out of a cloud gallery into Google Photos, OneDrive or a folder: resumable, verified, never losing one.')
    .version('0.1.0')
    .exitOverride()
    .showHelpAfterError();

  addRunOptions(program.command('migrate').description('migrate items (resumes where the last run on the same --state stopped)'), providers)
    .option('--dry-run', 'only compute the plan (same as `plan`)', false)
    .option('--deadline <date>', 'with --dry-run: the date the migration must be done by', time)
    .action(async (o) => {
      const { migrateCommand, planCommand } = await commands.migrate();
      process.exit(o.dryRun ? await planCommand(o) : await migrateCommand(o));
    });

  addRunOptions(program.command('plan').description('what `migrate` would do: counts, bytes, time, room, quota days'), providers)
    .option('--deadline <date>', 'the date the migration must be done by', time)
    .option('--assume-rate <MBps>', 'throughput assumed for the estimate, MB/s', '10')
    .action(async (o) => process.exit(await (await commands.migrate()).planCommand(o)));

  program
    .command('status')
    .description('items per state, bytes, failures with reasons')
    .option('--state <file>', 'state database', 'gallery-bridge.db')
    .option('--json', 'machine-readable output', false)
    .action(async (o) => process.exit(await (await commands.status()).statusCommand(o)));

  program
    .command('report')
    .description('one row per item with outcome, hashes and evidence (.json, .csv or .html by extension)')
    .option('--state <file>', 'state database', 'gallery-bridge.db')
    .requiredOption('--out <file>', 'output file')
    .action(async (o) => process.exit(await (await commands.status()).reportCommand(o)));

  const batch = program
    .command('batch')
    .description(
      'many accounts from one CSV manifest (account,source,destination[,source_account,destination_account,delete_source,delete_evidence,priority])',
    );
  batch
    .command('run')
    .description('migrate every account of the manifest, each as its own run with its own state (in warm worker processes); rerun to resume')
    .argument('<manifest>')
    .option('--state <dir>', 'batch directory: batch.db, accounts/NAME/state.db and the reports', 'gallery-bridge-batch')
    .option('--deadline <date>', 'the date the batch must be done by: plan which accounts finish, and finish the most', time)
    .option('--accounts-at-once <n>', 'accounts migrating at the same time', positiveInt, 4)
    .option('--per-provider <limits>', 'accounts at once per provider, e.g. google-photos=2,xiaomi=4 (defaults google-photos=4, onedrive=8, xiaomi=8)')
    .option('--delete-source', 'delete at the source once verified, for rows that do not say (see the safety rule)', false)
    .option('--google-daily-budget <n>', "Google's daily request budget for the project, shared by all accounts (default GOOGLE_PHOTOS_DAILY_QUOTA or 10000)")
    .option('--assume-rate <MBps>', 'throughput per account assumed before one is measured, MB/s', '5')
    .option('--concurrency <n>', 'items in flight per account', positiveInt)
    .option('--retries <n>', 'attempts per item in one run', positiveInt)
    .option('--verify-wait <seconds>', 'how long to wait for items the destination is still processing', positiveInt)
    .option('--fail-streak <n>', 'pause an account after this many failed items in a row', positiveInt, 10)
    .option('--worker-processes <n>', "warm worker processes the accounts at once are spread over (default: the machine's cores)", positiveInt)
    .option('--queue <url>', 'spread the batch over many machines: load it into this PostgreSQL database (postgres://...) and work as one worker')
    .option('--no-work', 'with --queue: only load the manifest; workers on any machine run it')
    .option('--slots <n>', 'with --queue: accounts this machine runs at once (default --accounts-at-once)', positiveInt)
    .option('--name <name>', "with --queue: this worker's name (default HOST-PID)")
    .option('--lease-seconds <n>', `with --queue: how long an account stays with a worker that stopped renewing it (default 60)`, positiveInt)
    .option('--json', 'JSON lines on stdout', false)
    .action(async (manifest: string, o) => process.exit(await (await commands.batch()).batchRunCommand(manifest, o)));
  // Started by `batch run` (src/batch/pool.ts): runs the batch's accounts one after another, in-process.
  batch
    .command('account-worker', { hidden: true })
    .description("a batch's warm worker process: one account's migrate at a time, given on stdin")
    .action(async () => {
      // Its first account is on its way (or the pool started it ahead of one): the migrate code
      // loads while the job is read, not after it (an error here is the job's to report).
      void commands.migrate().catch(() => undefined);
      process.exit(await (await import('./batch/account-worker.ts')).accountWorker(runMigrateIn));
    });
  batch
    .command('check')
    .description('check every row before anything moves: syntax, sign-ins, reachability, room, counts; writes a check report')
    .argument('<manifest>')
    .option('--state <dir>', 'batch directory (the counts feed its deadline plan; the report goes there)', 'gallery-bridge-batch')
    .option('--out <base>', 'check report path without extension (default DIR/check): writes .csv and .html')
    .option('--accounts-at-once <n>', 'accounts checked at the same time', positiveInt, 4)
    .option('--google-daily-budget <n>', "Google's daily request budget for the project")
    .option('--queue <url>', 'the counts feed the deadline plan of the batch in this PostgreSQL database (batch run --queue)')
    .option('--json', 'machine-readable output', false)
    .action(async (manifest: string, o) => process.exit(await (await commands.batch()).batchCheckCommand(manifest, o)));
  batch
    .command('status')
    .description("every account's state, counts, bytes, rate, ETA and last error")
    .option('--state <dir>', 'batch directory', 'gallery-bridge-batch')
    .option('--queue <url>', 'a queue-mode batch: its PostgreSQL URL (shows every worker and takeover; from any machine)')
    .option('--json', 'machine-readable output', false)
    .action(async (o) => process.exit(await (await commands.batch()).batchStatusCommand(o)));

  program
    .command('worker')
    .description('run accounts of a batch loaded with `batch run --queue`, on any machine, until none are left')
    .requiredOption('--queue <url>', "the batch's PostgreSQL database (postgres://user:password@host:5432/db)")
    .option('--slots <n>', 'accounts this worker runs at once', positiveInt, 4)
    .option('--name <name>', 'name shown in batch status (default HOST-PID); unique among running workers')
    .option('--follow', 'keep waiting for accounts when none are left (accounts loaded later, Google budget days)', false)
    .option('--state <dir>', "this worker's folder: account state while it runs, reports, sealed sign-ins opened for its runs", 'gallery-bridge-worker')
    .option('--lease-seconds <n>', "override the batch's lease length", positiveInt)
    .option('--json', 'JSON lines on stdout', false)
    .action(async (o) => process.exit(await (await commands.worker()).workerCommand(o)));

  program
    .command('serve')
    .description('a read-only live dashboard of a batch (or one state file) on 127.0.0.1')
    .option('--state <path>', 'batch directory or state file', 'gallery-bridge-batch')
    .option('--queue <url>', 'a queue-mode batch: its PostgreSQL URL (from any machine)')
    .option('--port <n>', 'port on 127.0.0.1 (0 picks a free one)', (v) => Number(v), 8765)
    .action(async (o) => process.exit(await (await commands.serve()).serveCommand(o)));

  program
    .command('hash')
    .description('SHA-1, SHA-256 and QuickXorHash (base64) of files')
    .argument('<files...>')
    .option('--json', 'machine-readable output', false)
    .action(async (files, o) => process.exit(await (await commands.hash()).hashCommand(files, o)));

  const auth = program
    .command('auth')
    .description(`sign in to a provider and store its credentials under GALLERY_BRIDGE_HOME (${PROVIDER_NAMES.filter((n) => n !== 'folder').join(', ')})`)
    .argument('<provider>')
    .option('--account <name>', 'name to store the account under', 'default')
    .allowUnknownOption(true)
    .action(async (name: string, o) => {
      const p = loadedProviders().find((x) => x.name === name);
      if (!p?.auth)
        throw new StopRunError('config', `no sign-in for "${name}"; providers with one: ${PROVIDER_NAMES.filter((n) => n !== 'folder').join(', ')}`);
      const [{ makeLogger }, { defaultHome }, { providerStore }, { openState }] = await Promise.all([
        import('./lib/log.ts'),
        import('./lib/credentials.ts'),
        import('./commands/providers.ts'),
        import('../state/db.ts'),
      ]);
      const log = makeLogger({ json: false, verbose: false });
      const home = defaultHome();
      const db = openState(path.join(home, 'auth-scratch.db'));
      try {
        await p.auth({
          arg: '',
          home,
          account: o.account,
          env: process.env,
          options: { ...o, args: process.argv.slice(4) },
          store: providerStore(db, `auth:${name}`),
          log,
        });
      } finally {
        db.close();
      }
      process.exit(0);
    });
  for (const p of loadedProviders())
    for (const o of p.cliOptions ?? [])
      if (!auth.options.some((x) => x.flags === o.flags)) auth.addOption(new Option(o.flags, `[${p.name}] ${o.description}`).default(o.defaultValue));

  program
    .command('emulator')
    .description(`start a provider's local emulator (${PROVIDER_NAMES.filter((n) => n !== 'folder').join(', ')}); prints KEY=VALUE lines`)
    .argument('<provider>')
    .allowUnknownOption(true)
    .helpOption(false)
    .argument('[args...]')
    .action(async (name: string, args: string[]) => {
      await (await commands.emulator()).emulatorCommand(name, args);
    });

  return program;
}

/** The providers a command line names: only those are loaded (help loads them all). */
function providersNamed(argv: string[]): string[] {
  const args = argv.slice(2);
  if (args.length === 0 || args.includes('--help') || args.includes('-h') || args[0] === 'help') return [...PROVIDER_NAMES];
  const names = new Set<string>();
  args.forEach((a, i) => {
    if ((a === '--from' || a === '--to') && args[i + 1]) names.add(splitSpec(args[i + 1]!).name);
    const eq = /^--(?:from|to)=(.*)$/.exec(a);
    if (eq) names.add(splitSpec(eq[1]!).name);
  });
  if ((args[0] === 'emulator' || args[0] === 'auth') && args[1]) names.add(args[1]);
  return [...names].filter((n) => PROVIDER_NAMES.includes(n));
}

export async function main(argv: string[]): Promise<void> {
  try {
    await loadProviders(providersNamed(argv));
  } catch (err) {
    process.exit(exitFor(err));
  }
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0) process.exit(0);
      if (err.code === 'usage') process.stderr.write(`error: ${err.message}\n`);
      process.exit(EXIT.usage);
    }
    process.exit(exitFor(err));
  }
}

/**
 * One account's `migrate ARGV` inside this process (a batch's warm worker): parsed, run and
 * mapped to its exit code exactly as `main` would, without exiting.
 */
async function runMigrateIn(argv: string[], env: Record<string, string>, account: AccountRun): Promise<number> {
  const args = [process.argv[0]!, process.argv[1]!, 'migrate', ...argv];
  try {
    const program = buildProgram(await loadProviders(providersNamed(args)));
    let code: number = EXIT.partial;
    program.commands
      .find((c) => c.name() === 'migrate')!
      .action(async (o) => {
        code = await (await commands.migrate()).migrateCommand(o, { ...process.env, ...env }, account);
      });
    // Commander's own messages (a bad option) go to this account's stderr too.
    program.configureOutput({ writeOut: (s) => void account.out.stdout.write(s), writeErr: (s) => void account.out.stderr.write(s) });
    for (const c of program.commands)
      c.configureOutput({ writeOut: (s) => void account.out.stdout.write(s), writeErr: (s) => void account.out.stderr.write(s) });
    await program.parseAsync(args);
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'usage') account.out.stderr.write(`error: ${err.message}\n`);
      return EXIT.usage;
    }
    return exitFor(err, account.out.stderr);
  }
}

/** Maps an error that escaped a command to a one-line message and the documented exit code. */
export function exitFor(err: unknown, stderr: LineSink = process.stderr): number {
  // After any line still held for the end of the turn (src/lib/lines.ts).
  flushLines();
  stderr.write(`error: ${reason(err)}
`);
  if (err instanceof StopRunError) return { quota: EXIT.quota, credentials: EXIT.credentials, 'destination-full': EXIT.full, config: EXIT.usage }[err.kind];
  // By name: state/db.ts (and SQLite) is not loaded by commands that never open a state file.
  if (err instanceof Error && err.name === 'StateFileError') return EXIT.usage;
  return EXIT.partial;
}

await main(process.argv);
