/**
 * Scripts the browser tests run inside the page. They are strings because the tests are type-checked for Node,
 * without the DOM's types; each is small and says what it returns.
 */

/** Sets a marker a reload would wipe and starts summing layout shifts (window.__shifts). */
export const WATCH_PAGE = `
  window.__marker = 'same page';
  window.__shifts = 0;
  new PerformanceObserver((list) => { for (const e of list.getEntries()) window.__shifts += e.value; }).observe({ type: 'layout-shift' });
`;
/** The marker WATCH_PAGE set ('same page'), or undefined after a reload. */
export const PAGE_MARKER = 'window.__marker';
/** The layout shift summed since WATCH_PAGE. */
export const LAYOUT_SHIFT = 'window.__shifts';

/** Starts collecting the durations of long tasks (window.__longTasks). */
export const WATCH_LONG_TASKS = `
  window.__longTasks = [];
  new PerformanceObserver((list) => { for (const e of list.getEntries()) window.__longTasks.push(e.duration); }).observe({ type: 'longtask' });
`;
export const LONG_TASKS = 'window.__longTasks';

/** How many px the page scrolls sideways (0 or less: it fits). */
export const SIDEWAYS_OVERFLOW = 'document.documentElement.scrollWidth - window.innerWidth';

/** Inputs, selects and buttons with no label, aria-label or button text (their HTML, shortened). */
export const UNLABELLED_CONTROLS = `
  [...document.querySelectorAll('input:not([type=hidden]), select, button')]
    .filter((e) => !((e.labels && e.labels.length > 0) || e.getAttribute('aria-label') || (e.tagName === 'BUTTON' && e.textContent.trim())))
    .map((e) => e.outerHTML.slice(0, 80))
`;

/** The text of the focused element. */
export const FOCUSED_TEXT = 'document.activeElement ? document.activeElement.textContent : null';

/** What scripts can read of the cookies (HttpOnly ones are not there). */
export const SCRIPT_COOKIES = 'document.cookie';
