import type { Logger } from '@cms/observability';

/** The one line for a port that is taken; `npm start` says the same before it starts anything. */
export function portInUseMessage(service: string, host: string, port: number, setting: string): string {
  return (
    `${service} cannot listen on ${host}:${port}: the port is in use (is another npm start still running?). ` +
    `Stop what holds it (ss -ltnp 'sport = :${port}' shows it) or set ${setting} to a free port`
  );
}

export interface ListenOptions {
  /** The service's name, as in its logs. */
  service: string;
  host: string;
  port: number;
  /** The setting that chooses the port, named in the message (INGEST_PORT, API_PORT, ...). */
  setting: string;
  log: Logger;
  /** Releases what the service opened before listening (Redis, Postgres, workers) before the process exits. */
  close?: () => Promise<void>;
}

interface Listener {
  listen(options: { host: string; port: number }): Promise<unknown>;
}

/** How long `close` may take when the service gives up for want of its port. */
const CLOSE_DEADLINE_MS = 5_000;

/**
 * `app.listen` for a service's main. A port that is taken (or that needs privileges) ends the process with one log
 * line naming the service, the address and what to do, and exit code 1, instead of an unhandled EADDRINUSE with its
 * stack trace. Other errors are thrown as they are.
 */
export async function listenOrExit(app: Listener, options: ListenOptions): Promise<void> {
  const { service, host, port, setting, log } = options;
  try {
    await app.listen({ host, port });
    return;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EADDRINUSE' && code !== 'EACCES') throw err;
    log.fatal(
      { host, port, code },
      code === 'EADDRINUSE'
        ? portInUseMessage(service, host, port, setting)
        : `${service} may not listen on ${host}:${port} (ports below 1024 need privileges): set ${setting} to a port above 1023`,
    );
  }
  if (options.close) {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      options.close().catch(() => {}),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, CLOSE_DEADLINE_MS);
      }),
    ]);
    clearTimeout(timer);
  }
  process.exit(1);
}
