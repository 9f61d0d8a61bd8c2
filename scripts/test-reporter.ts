/**
 * The test reporter `npm test` uses: node's spec reporter, except that the coverage report is one line per
 * workspace and a total instead of a row per file, so CI output carries the figure without a page of table.
 *
 * The run's closing counts (tests, pass, fail, ...) are held back until the coverage lines are out, so the output
 * still ends as node's test runner ends it and whoever reads the last lines sees the counts.
 */
import { globSync } from 'node:fs';
import { relative } from 'node:path';
import { spec, type TestEvent } from 'node:test/reporters';

type Coverage = Extract<TestEvent, { type: 'test:coverage' }>['data']['summary'];
type Counts = Pick<
  Coverage['totals'],
  'totalLineCount' | 'coveredLineCount' | 'totalBranchCount' | 'coveredBranchCount' | 'totalFunctionCount' | 'coveredFunctionCount'
>;

/** The source `--test-coverage-include` counts in package.json; kept in step with it. */
const SOURCE_GLOB = '{libs,services,tools}/*/src/**/*.ts';

export default async function* reporter(source: AsyncIterable<TestEvent>): AsyncGenerator<string> {
  const inner = spec();
  const out: string[] = [];
  inner.on('data', (chunk: string | Buffer) => out.push(String(chunk)));
  // Top-level diagnostics are the closing counts; the runner emits them just before the coverage event.
  const held: TestEvent[] = [];
  let coverageSeen = false;
  for await (const event of source) {
    if (event.type === 'test:coverage') {
      coverageSeen = true;
      yield coverageSummary(event.data.summary);
      for (const e of held.splice(0)) inner.write(e);
    } else if (event.type === 'test:diagnostic' && event.data.nesting === 0 && !coverageSeen) {
      held.push(event);
    } else {
      inner.write(event);
    }
    yield* out.splice(0);
  }
  for (const e of held.splice(0)) inner.write(e);
  const ended = new Promise((resolve) => inner.once('end', resolve));
  inner.end();
  await ended;
  yield* out.splice(0);
}

function coverageSummary(summary: Coverage): string {
  const cwd = summary.workingDirectory;
  const byWorkspace = new Map<string, Counts>();
  const loaded = new Set<string>();
  for (const file of summary.files) {
    const path = relative(cwd, file.path);
    loaded.add(path);
    // libs/db/src/schema.ts → libs/db
    const workspace = path.split('/').slice(0, 2).join('/');
    const sum = byWorkspace.get(workspace) ?? zero();
    for (const key of Object.keys(sum) as (keyof Counts)[]) sum[key] += file[key];
    byWorkspace.set(workspace, sum);
  }
  const lines = ['coverage of libs, services and tools source (lines / branches / functions):'];
  const width = Math.max(10, ...[...byWorkspace.keys()].map((w) => w.length));
  for (const [workspace, sum] of [...byWorkspace].sort(([a], [b]) => a.localeCompare(b))) {
    lines.push(`  ${workspace.padEnd(width)}  ${figures(sum)}`);
  }
  lines.push(`  ${'all files'.padEnd(width)}  ${figures(summary.totals)}`);
  // node reports only files some test loaded; a module no test imports would otherwise vanish from the figure.
  const unloaded = globSync(SOURCE_GLOB, { cwd })
    .filter((p) => !loaded.has(p))
    .sort();
  if (unloaded.length > 0) lines.push(`  not loaded by any test, so not in the figures above: ${unloaded.join(', ')}`);
  return lines.map((l) => `\u2139 ${l}\n`).join('');
}

function zero(): Counts {
  return {
    totalLineCount: 0,
    coveredLineCount: 0,
    totalBranchCount: 0,
    coveredBranchCount: 0,
    totalFunctionCount: 0,
    coveredFunctionCount: 0,
  };
}

function figures(c: Counts): string {
  const pct = (covered: number, total: number): string => `${(total === 0 ? 100 : (100 * covered) / total).toFixed(1)} %`.padStart(7);
  return [
    pct(c.coveredLineCount, c.totalLineCount),
    pct(c.coveredBranchCount, c.totalBranchCount),
    pct(c.coveredFunctionCount, c.totalFunctionCount),
  ].join('  ');
}
