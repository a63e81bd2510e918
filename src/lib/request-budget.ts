// A budget of API requests shared beyond this process (queue mode: one Google budget for every
// worker of a batch). A provider asks it before each request it counts against the service's
// daily quota; with no budget installed (a single machine) nothing changes.

import { forgetAfterAccount } from './account-scope.ts';

export interface RequestBudget {
  /** Resolves when one request to `project` may go out; throws StopRunError('quota') when the day's budget is gone. */
  take(project: string): Promise<void>;
  /** The service said the day's quota is spent: every process sharing the budget stops asking. */
  spent(project: string): Promise<void>;
}

let installed: RequestBudget | null = null;
// A warm batch worker's next account installs its own (queue mode) or none.
forgetAfterAccount(() => {
  installed = null;
});

export function installRequestBudget(b: RequestBudget | null): void {
  installed = b;
}

export function requestBudget(): RequestBudget | null {
  return installed;
}
