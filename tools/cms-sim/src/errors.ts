/**
 * A failure the simulated CMS API reports: HTTP status plus the `<failureDetails>` reason, e.g.
 * 404 + callDoesNotExist. Model operations throw it so the API and the driver report the same thing.
 */
export class CmsFailure extends Error {
  readonly status: number;
  readonly failureReason: string;
  /** For parameterError: the offending parameter. */
  readonly parameter: string | undefined;

  constructor(status: number, failureReason: string, parameter?: string) {
    super(parameter ? `${failureReason} (${parameter})` : failureReason);
    this.name = 'CmsFailure';
    this.status = status;
    this.failureReason = failureReason;
    this.parameter = parameter;
  }
}

export function callDoesNotExist(): CmsFailure {
  return new CmsFailure(404, 'callDoesNotExist');
}
export function callLegDoesNotExist(): CmsFailure {
  return new CmsFailure(404, 'callLegDoesNotExist');
}
export function participantDoesNotExist(): CmsFailure {
  return new CmsFailure(404, 'participantDoesNotExist');
}
export function parameterError(parameter: string): CmsFailure {
  return new CmsFailure(400, 'parameterError', parameter);
}

/** Misuse of the simulator itself (unknown bridge name, bad option), not a CMS answer. */
export class SimulatorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SimulatorError';
  }
}

export class ScenarioError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ScenarioError';
  }
}

export class CdrDeliveryTimeoutError extends Error {
  constructor(pending: number, timeoutMs: number) {
    super(`${pending} CDR record(s) still undelivered after ${timeoutMs} ms`);
    this.name = 'CdrDeliveryTimeoutError';
  }
}
