// The console's entry point: who is signed in, the page frame and a small router (history API).
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ActivityPage } from './activity.js';
import { api, setCsrfToken } from './api.js';
import { HealthPage } from './health.js';
import { html } from './html.js';
import { LobbyPage } from './lobby.js';
import { MeetingPage } from './meeting.js';
import { MeetingsPage } from './meetings.js';
import { RecordsPage } from './records.js';

const PAGES = [
  { path: '/', label: 'Meetings' },
  { path: '/lobby', label: 'Lobby' },
  { path: '/records', label: 'Records' },
  { path: '/activity', label: 'Activity' },
  { path: '/health', label: 'Health' },
];

function currentRoute() {
  return { path: location.pathname, search: location.search };
}

export function navigate(url) {
  history.pushState(null, '', url);
  dispatchEvent(new Event('console:navigate'));
}

function useRoute() {
  const [route, setRoute] = useState(currentRoute());
  useEffect(() => {
    const onChange = () => setRoute(currentRoute());
    addEventListener('popstate', onChange);
    addEventListener('console:navigate', onChange);
    // Same-site links move within the page instead of reloading it.
    const onClick = (event) => {
      const link = event.target.closest?.('a[href]');
      if (!link || link.target || link.hasAttribute('download') || event.defaultPrevented) return;
      if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
      const url = new URL(link.href);
      if (url.origin !== location.origin || url.pathname.startsWith('/console/') || url.pathname.startsWith('/docs')) return;
      event.preventDefault();
      navigate(url.pathname + url.search);
    };
    document.addEventListener('click', onClick);
    return () => {
      removeEventListener('popstate', onChange);
      removeEventListener('console:navigate', onChange);
      document.removeEventListener('click', onClick);
    };
  }, []);
  return route;
}

function page(route, session) {
  const { path } = route;
  if (path === '/') return { title: 'Meetings', body: html`<${MeetingsPage} session=${session} />` };
  if (path.startsWith('/meetings/')) {
    const key = decodeURIComponent(path.slice('/meetings/'.length));
    return { title: 'Meeting', body: html`<${MeetingPage} key=${key} meetingKey=${key} session=${session} />` };
  }
  if (path === '/lobby') return { title: 'Lobby', body: html`<${LobbyPage} session=${session} />` };
  if (path === '/records') return { title: 'Records', body: html`<${RecordsPage} session=${session} search=${route.search} />` };
  if (path === '/activity') return { title: 'Activity', body: html`<${ActivityPage} session=${session} />` };
  if (path === '/health') return { title: 'Health', body: html`<${HealthPage} session=${session} />` };
  return { title: 'Not found', body: html`<p class="notice">There is no page ${path}. <a href="/">Meetings</a></p>` };
}

function App({ session }) {
  const route = useRoute();
  const { title, body } = page(route, session);
  useEffect(() => {
    document.title = `${title} · CMS console`;
  }, [title]);
  const current = (p) => (p === '/' ? route.path === '/' || route.path.startsWith('/meetings/') : route.path === p);
  return html`
    <a class="skip" href="#main">Skip to content</a>
    <header class="top">
      <a class="brand" href="/">CMS console</a>
      <nav aria-label="Pages">
        <ul>
          ${PAGES.map(
            (p) => html`<li key=${p.path}><a href=${p.path} aria-current=${current(p.path) ? 'page' : undefined}>${p.label}</a></li>`,
          )}
        </ul>
      </nav>
      <div class="who">
        <span class="who-name" title="Signed in as">${session.name}</span>
        <span class=${`role role-${session.role}`} data-testid="role">${session.role}</span>
        <form method="post" action="/sign-out">
          <input type="hidden" name="csrf" value=${session.csrfToken ?? ''} />
          <button type="submit" class="quiet">Sign out</button>
        </form>
      </div>
    </header>
    <main id="main" tabindex="-1">
      <h1>${title}</h1>
      ${session.role === 'viewer' ? html`<p class="viewer-note">Viewer: you can look, not act. Actions need the operator role.</p>` : null}
      ${body}
    </main>
  `;
}

async function start() {
  const root = document.getElementById('app');
  try {
    const { data } = await api('/console/session');
    setCsrfToken(data.csrfToken);
    const session = { ...data, canAct: data.role === 'operator' || data.role === 'admin' };
    root.textContent = '';
    render(html`<${App} session=${session} />`, root);
  } catch (err) {
    if (err?.status !== 401) root.innerHTML = '';
    if (err?.status !== 401) root.append(Object.assign(document.createElement('p'), { className: 'notice error', textContent: String(err.message ?? err) }));
  }
}

start();
