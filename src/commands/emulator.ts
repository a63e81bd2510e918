// `emulator NAME --port N --data DIR ...`: starts a provider's emulator, prints the KEY=VALUE
// lines that point the tool at it, and runs until SIGINT or SIGTERM.

import { loadProvider, PROVIDER_NAMES } from '../../providers/index.ts';
import { StopRunError } from '../../providers/types.ts';
import { COMMON_FLAG_HELP, printEnv } from '../emulator/kit.ts';

export async function emulatorCommand(name: string, args: string[]): Promise<void> {
  const p = await loadProvider(name);
  if (!p?.emulator) throw new StopRunError('config', `no emulator named "${name}"; there are: ${PROVIDER_NAMES.filter((n) => n !== 'folder').join(', ')}`);
  if (args.includes('--help')) {
    process.stdout.write(`gallery-bridge emulator ${name} --port N --data DIR [flags]\n${COMMON_FLAG_HELP}\n`);
    process.exit(0);
  }
  let handle;
  try {
    handle = await p.emulator(args);
  } catch (err) {
    throw new StopRunError('config', `emulator ${name}: ${(err as Error).message}`);
  }
  printEnv(handle.env);
  const stop = async () => {
    await handle.close();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  await new Promise(() => undefined);
}
