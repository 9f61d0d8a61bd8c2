import { createHash } from 'node:crypto';

/** Escapes text for HTML element content and double-quoted attribute values. */
function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * Bare module names the console's scripts import, mapped to files this service serves from node_modules: the
 * browser loads Preact and htm as native ES modules, nothing is bundled or fetched from elsewhere.
 */
const IMPORT_MAP = JSON.stringify({
  imports: {
    preact: '/console/vendor/preact.js',
    'preact/hooks': '/console/vendor/hooks.js',
    htm: '/console/vendor/htm.js',
  },
});

/** The import map is the one inline script; the policy allows exactly it by hash (no 'unsafe-inline'). */
const IMPORT_MAP_HASH = `sha256-${createHash('sha256').update(IMPORT_MAP).digest('base64')}`;

/**
 * Strict policy for every console page: scripts, styles, images and connections from this origin only, no inline
 * code except the hashed import map, no framing, forms post only here.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  `script-src 'self' '${IMPORT_MAP_HASH}'`,
  "style-src 'self'",
  "img-src 'self'",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

/** Headers of every console HTML page. */
export const PAGE_HEADERS = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  // same-origin, not no-referrer: under no-referrer a form POST carries "Origin: null", which the CSRF origin check refuses.
  'referrer-policy': 'same-origin',
  'cache-control': 'no-store',
  'x-frame-options': 'DENY',
};

function document(title: string, head: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<link rel="icon" href="/console/app/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/console/app/console.css">
${head}
</head>
${body}
</html>
`;
}

/** The page the console's script renders into (every signed-in page: the script routes by path). */
export function appShell(): string {
  return document(
    'CMS console',
    `<script type="importmap">${IMPORT_MAP}</script>\n<script type="module" src="/console/app/main.js"></script>`,
    '<body><div id="app"><p class="boot">Loading the console…</p></div>' +
      '<noscript><p class="boot">The console needs JavaScript. The same data is in the API: see <a href="/docs">/docs</a>.</p></noscript></body>',
  );
}

/** Sign-in: a plain form (works before any script), posting the token to POST /sign-in. */
export function signInPage(options: { next: string; error?: string; notice?: string }): string {
  const message = options.error
    ? `<p class="notice error" role="alert">${escapeHtml(options.error)}</p>`
    : options.notice
      ? `<p class="notice" role="status">${escapeHtml(options.notice)}</p>`
      : '';
  return document(
    'Sign in · CMS console',
    '',
    `<body class="sign-in">
<main class="sign-in-card">
<h1>CMS console</h1>
<p>Sign in with an API token: <code>API_TOKEN</code> or one of the named tokens under <code>api.tokens</code>. Its role decides what you may do.</p>
${message}
<form method="post" action="/sign-in">
<input type="hidden" name="next" value="${escapeHtml(options.next)}">
<label for="token">Access token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required minlength="16" autofocus>
<button type="submit">Sign in</button>
</form>
</main>
</body>`,
  );
}
