export { createMetricsApp, type HealthRoutesOptions, installHealthRoutes, pingCheck, type ReadinessCheck } from './health.ts';
export { type ListenOptions, listenOrExit, portInUseMessage } from './listen.ts';
export { quietRequestLogging } from './logging.ts';
export { HttpProblem, installProblemHandlers, type ProblemHandlerOptions, sendProblem } from './problem.ts';
export { onShutdown } from './shutdown.ts';
export { bearerToken, tokenMatcher, tokenMatches } from './tokens.ts';
