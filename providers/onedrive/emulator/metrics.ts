// Counters for tests and the chaos suite, served at /__emulator/metrics without auth.

export interface EmulatorMetrics {
  requests: number;
  byRoute: Record<string, number>;
  byStatus: Record<string, number>;
  faults: Record<string, number>;
  /** Body bytes that reached upload URLs, counted as they arrive (including cut-off fragments). */
  uploadBytesReceived: number;
  /** Fragment bytes written into sessions. */
  uploadBytesAccepted: number;
  /** Per target path: received and accepted bytes, sessions created. */
  perPath: Record<string, { received: number; accepted: number; sessions: number; fragments: number }>;
  sessionsCreated: number;
  filesCreated: number;
  authHeaderOnUploadUrl: number;
}

export function newMetrics(): EmulatorMetrics {
  return {
    requests: 0,
    byRoute: {},
    byStatus: {},
    faults: {},
    uploadBytesReceived: 0,
    uploadBytesAccepted: 0,
    perPath: {},
    sessionsCreated: 0,
    filesCreated: 0,
    authHeaderOnUploadUrl: 0,
  };
}

export function pathMetrics(metrics: EmulatorMetrics, drive: string, p: string): EmulatorMetrics['perPath'][string] {
  const k = `${drive}:${p}`;
  return (metrics.perPath[k] ??= { received: 0, accepted: 0, sessions: 0, fragments: 0 });
}
