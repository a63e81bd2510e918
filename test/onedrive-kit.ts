// The OneDrive emulator as the CLI tests start it: on a free port, trusting the test CA,
// accepting one token, closed after each test; and the environment that points the CLI at it.

import { afterEach } from 'vitest';
import { startOneDriveEmulator } from '../providers/onedrive/emulator/server.ts';
import { tlsArgs } from './helpers.ts';

export type Emu = Awaited<ReturnType<typeof startOneDriveEmulator>>;

export function oneDriveKit(token: string) {
  const running: Emu[] = [];
  afterEach(async () => {
    while (running.length) await running.pop()!.close();
  });
  return {
    async emulator(data: string, flags: string[] = []): Promise<Emu> {
      const e = await startOneDriveEmulator(['--port', '0', '--data', data, '--accept-token', token, ...tlsArgs(), ...flags]);
      running.push(e);
      return e;
    },
    /** Closes one emulator before the test ends (to start another on its port). */
    async close(e: Emu): Promise<void> {
      running.splice(running.indexOf(e), 1);
      await e.close();
    },
    cliEnv(e: Emu, home: string, extra: Record<string, string> = {}): Record<string, string> {
      return {
        GRAPH_BASE_URL: e.env.GRAPH_BASE_URL!,
        NODE_EXTRA_CA_CERTS: e.env.NODE_EXTRA_CA_CERTS!,
        GALLERY_BRIDGE_HOME: home,
        ONEDRIVE_ACCESS_TOKEN: token,
        ...extra,
      };
    },
  };
}
