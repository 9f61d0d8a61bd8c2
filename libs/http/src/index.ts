export { installHealthRoutes, pingCheck, type ReadinessCheck } from './health.ts';
export { quietRequestLogging } from './logging.ts';
export { HttpProblem, installProblemHandlers, sendProblem } from './problem.ts';
export { onShutdown } from './shutdown.ts';
export { bearerToken, tokenMatches } from './tokens.ts';
