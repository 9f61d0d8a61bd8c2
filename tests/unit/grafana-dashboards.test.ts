/**
 * The provisioned Grafana dashboards, checked without a Grafana (Debian has no package): each JSON uses the
 * provisioned data source, has unique panel ids, a unit and a description on every panel, panels inside the 24-column
 * grid that do not overlap, and the provisioning files agree with where docker-compose.yml mounts them. Whether the
 * queries return data is tests/e2e/prometheus.test.ts's job.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const GRAFANA = path.join(ROOT, 'ops/grafana');
const DASHBOARDS = path.join(GRAFANA, 'dashboards');

/** Grafana unit ids the dashboards may use (a subset of Grafana's value formats; extend it when a panel needs another). */
const KNOWN_UNITS = new Set([
  'none',
  'short',
  'percent',
  'percentunit',
  's',
  'ms',
  'm',
  'h',
  'cps',
  'ops',
  'reqps',
  'rps',
  'wps',
  'bytes',
  'dateTimeFromNow',
]);

interface GridPos {
  x: number;
  y: number;
  w: number;
  h: number;
}
interface Target {
  datasource?: { type?: string; uid?: string };
  refId?: string;
  expr?: string;
}
interface Panel {
  id: number;
  type: string;
  title?: string;
  description?: string;
  datasource?: { type?: string; uid?: string };
  gridPos: GridPos;
  fieldConfig?: { defaults?: { unit?: string } };
  targets?: Target[];
  panels?: Panel[];
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating?: { list: { name: string; datasource?: { uid?: string } }[] };
}

function yamlFile(relative: string): Record<string, unknown> {
  return parse(readFileSync(path.join(ROOT, relative), 'utf8')) as Record<string, unknown>;
}

const files = readdirSync(DASHBOARDS).filter((f) => f.endsWith('.json'));
const dashboards = files.map((file) => ({ file, json: JSON.parse(readFileSync(path.join(DASHBOARDS, file), 'utf8')) as Dashboard }));

/** Every panel, those nested in collapsed rows included. */
function allPanels(dashboard: Dashboard): Panel[] {
  return dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

const datasources = (yamlFile('ops/grafana/provisioning/datasources/prometheus.yml').datasources ?? []) as {
  uid: string;
  type: string;
  url: string;
}[];
const prometheusUid = datasources.find((d) => d.type === 'prometheus')?.uid;

describe('Grafana provisioning', () => {
  test('one Prometheus data source, with the uid the dashboards name, pointing at the compose service', () => {
    assert.equal(datasources.length, 1);
    assert.equal(prometheusUid, 'prometheus');
    assert.equal(datasources[0]?.url, 'http://prometheus:9090');
  });

  test('the dashboard provider reads the folder docker-compose.yml mounts ops/grafana/dashboards at', () => {
    const providers = (yamlFile('ops/grafana/provisioning/dashboards/dashboards.yml').providers ?? []) as {
      type: string;
      options: { path: string };
    }[];
    assert.equal(providers.length, 1);
    const compose = yamlFile('docker-compose.yml') as { services: Record<string, { volumes?: string[] }> };
    const mounts = compose.services.grafana?.volumes ?? [];
    const dashboardsMount = mounts.find((v) => v.startsWith('./ops/grafana/dashboards:'));
    assert.ok(dashboardsMount, `grafana mounts ./ops/grafana/dashboards (volumes: ${mounts.join(', ')})`);
    assert.equal(providers[0]?.options.path, dashboardsMount.split(':')[1]);
    assert.ok(
      mounts.some((v) => v.startsWith('./ops/grafana/provisioning:/etc/grafana/provisioning')),
      'grafana mounts the provisioning folder where Grafana reads it',
    );
  });

  test('there is a "CMS CDR platform" dashboard, and dashboard uids are unique', () => {
    assert.ok(dashboards.some((d) => d.json.title === 'CMS CDR platform'));
    const uids = dashboards.map((d) => d.json.uid);
    assert.equal(new Set(uids).size, uids.length, `uids: ${uids.join(', ')}`);
    for (const { file, json } of dashboards) assert.match(json.uid, /^[a-zA-Z0-9_-]{1,40}$/, file);
  });
});

for (const { file, json } of dashboards) {
  describe(`dashboard ${file}`, () => {
    const panels = allPanels(json);
    const dataPanels = panels.filter((p) => p.type !== 'row');

    test('panel ids are unique positive integers', () => {
      const ids = panels.map((p) => p.id);
      for (const id of ids) assert.ok(Number.isInteger(id) && id > 0, `panel id ${id}`);
      assert.equal(new Set(ids).size, ids.length, `duplicate ids in ${ids.join(', ')}`);
    });

    test('every panel and query uses the provisioned Prometheus data source', () => {
      assert.ok(dataPanels.length > 0);
      for (const panel of dataPanels) {
        assert.equal(panel.datasource?.uid, prometheusUid, `panel "${panel.title}" data source`);
        assert.ok(panel.targets?.length, `panel "${panel.title}" has queries`);
        for (const target of panel.targets ?? []) {
          assert.equal(target.datasource?.uid, prometheusUid, `a query of "${panel.title}"`);
          assert.ok(target.expr?.trim(), `a query of "${panel.title}" has an expression`);
        }
        const refIds = (panel.targets ?? []).map((t) => t.refId);
        assert.equal(new Set(refIds).size, refIds.length, `refIds of "${panel.title}" are unique`);
      }
      for (const variable of json.templating?.list ?? []) {
        if (variable.datasource) assert.equal(variable.datasource.uid, prometheusUid, `variable ${variable.name}`);
      }
    });

    test('every panel has a title, a description and a known unit', () => {
      for (const panel of dataPanels) {
        assert.ok(panel.title?.trim(), `panel ${panel.id} has a title`);
        assert.ok(panel.description?.trim(), `panel "${panel.title}" says what it shows`);
        const unit = panel.fieldConfig?.defaults?.unit;
        assert.ok(unit && KNOWN_UNITS.has(unit), `panel "${panel.title}" unit ${unit}`);
      }
    });

    test('the variables the queries use are defined', () => {
      const defined = new Set((json.templating?.list ?? []).map((v) => v.name));
      for (const panel of dataPanels) {
        for (const target of panel.targets ?? []) {
          for (const [, name] of (target.expr ?? '').matchAll(/\$\{?(\w+)/g)) {
            if (name?.startsWith('__')) continue; // Grafana's own ($__rate_interval, ...)
            assert.ok(defined.has(name as string), `"${panel.title}" uses $${name}, which the dashboard does not define`);
          }
        }
      }
    });

    test('panels sit inside the 24-column grid and do not overlap', () => {
      for (const panel of panels) {
        const { x, y, w, h } = panel.gridPos ?? ({} as GridPos);
        for (const [name, v] of Object.entries({ x, y, w, h })) {
          assert.ok(Number.isInteger(v) && v >= 0, `panel "${panel.title}" gridPos.${name} = ${v}`);
        }
        assert.ok(w >= 1 && h >= 1 && x + w <= 24, `panel "${panel.title}" fits the grid (${JSON.stringify(panel.gridPos)})`);
      }
      // Nested panels of a collapsed row are laid out when it opens; those of open rows share the top level.
      const laidOut = json.panels;
      for (const [i, a] of laidOut.entries()) {
        for (const b of laidOut.slice(i + 1)) {
          const overlap =
            a.gridPos.x < b.gridPos.x + b.gridPos.w &&
            b.gridPos.x < a.gridPos.x + a.gridPos.w &&
            a.gridPos.y < b.gridPos.y + b.gridPos.h &&
            b.gridPos.y < a.gridPos.y + a.gridPos.h;
          assert.ok(!overlap, `"${a.title}" ${JSON.stringify(a.gridPos)} overlaps "${b.title}" ${JSON.stringify(b.gridPos)}`);
        }
      }
    });
  });
}
