// One row of `npm run bench`: a measurement, the peer it is measured beside in the same run,
// and the goal it is held to. Goals are ratios, because these machines are shared and noisy.
export interface BenchRow {
  name: string;
  value: number;
  unit: string;
  /** What the value is compared with, measured in the same run. */
  peer?: { name: string; value: number; unit: string };
  /** value/peer (or the ratio that the goal speaks of). */
  ratio?: number;
  goal?: string;
  met?: boolean;
}
export type BenchSuite = () => Promise<BenchRow[]>;
