// Small shared pieces: the level badge, outcomes, times and the action runner.
import { html } from './html.js';
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError } from './api.js';

const LEVEL_WORDS = { 1: 'Secure', 2: 'Internal', 3: 'External' };

/** A security level as a colour *and* a word (never colour alone). */
export function Level({ level }) {
  if (level === null || level === undefined) return html`<span class="level level-none">— none</span>`;
  return html`<span class="level level-${level}"><span class="level-digit">${level}</span> ${LEVEL_WORDS[level]}</span>`;
}

export function levelWord(level) {
  return level === null || level === undefined ? 'none' : `${level} ${LEVEL_WORDS[level]}`;
}

export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds) || seconds < 0) return '—';
  const s = Math.floor(seconds % 60);
  const m = Math.floor((seconds / 60) % 60);
  const h = Math.floor(seconds / 3600);
  const pad = (n) => String(n).padStart(2, '0');
  return h > 0 ? `${h}:${pad(m)}:${pad(s)}` : `${m}:${pad(s)}`;
}

export function formatTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString(undefined, { hour12: false });
}

/** The current time, re-rendered every second (one timer per page, not one per row). */
export function useNow(intervalMs = 1000) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), intervalMs);
    return () => clearInterval(timer);
  }, [intervalMs]);
  return now;
}

export function ProblemNotice({ problem, what }) {
  if (!problem) return null;
  const detail = problem.detail ?? problem.message ?? String(problem);
  return html`<p class="notice error" role="alert">${what ? `${what}: ` : ''}${detail}${
    problem.status === 403 ? ' Ask an administrator for a token with that role.' : ''
  }</p>`;
}

const FINAL = new Set(['applied', 'failed']);

/**
 * Runs an operator action and follows it to its outcome: the API answers 202 with an action resource
 * (queued) or the final outcome; a queued one is read again (GET /api/v1/actions/<id>) until CMS answered.
 * Each outcome is { id, label, state: running|queued|applied|failed|refused, detail }.
 */
export function useActions() {
  const [outcomes, setOutcomes] = useState([]);
  const update = (key, patch) => setOutcomes((list) => list.map((o) => (o.key === key ? { ...o, ...patch } : o)));
  async function run(label, path, options) {
    const key = `${Date.now()}-${Math.random()}`;
    setOutcomes((list) => [{ key, label, state: 'running', detail: 'sending…' }, ...list].slice(0, 8));
    try {
      const { data } = await api(path, options);
      let action = data?.action ?? data;
      update(key, describe(action));
      for (let i = 0; i < 60 && action?.id !== undefined && !FINAL.has(action.status); i++) {
        await new Promise((resolve) => setTimeout(resolve, 500));
        action = (await api(`/api/v1/actions/${encodeURIComponent(action.id)}`)).data;
        action = action?.action ?? action;
        update(key, describe(action));
      }
    } catch (err) {
      const detail = err instanceof ApiError ? err.message + (err.status === 403 ? ' Ask an administrator for a token with that role.' : '') : String(err);
      update(key, { state: 'refused', detail });
    }
  }
  return { outcomes, run };
}

/** CMS's reason for a failed action (failureDetails: { reason, parameter }), as a person reads it. */
export function failureText(action) {
  const f = action.failureDetails;
  const reason = f ? `${f.reason}${f.parameter ? ` (${f.parameter})` : ''}` : 'CMS refused it';
  return `${reason}${action.httpStatus ? `, HTTP ${action.httpStatus}` : ''}`;
}

function describe(action) {
  if (!action || typeof action !== 'object') return { state: 'applied', detail: 'done' };
  const status = action.status ?? 'applied';
  const detail = status === 'failed' ? `failed: ${failureText(action)}` : status === 'queued' ? 'queued, waiting for CMS…' : status;
  return { state: status, detail, id: action.id };
}

export function Outcomes({ outcomes, label = 'Action outcomes' }) {
  return html`<section class="outcomes" aria-label=${label}>
    <ul aria-live="polite">
      ${outcomes.map(
        (o) => html`<li key=${o.key} class=${`outcome outcome-${o.state}`} data-state=${o.state}>
          <strong>${o.label}</strong> <span class="outcome-detail">${o.detail}</span>
        </li>`,
      )}
    </ul>
  </section>`;
}
