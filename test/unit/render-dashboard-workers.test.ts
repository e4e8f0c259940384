import { describe, expect, it } from 'vitest';
import { imagesText, renderDashboard } from '../../src/service/dashboard/render-dashboard.js';
import { fixtureModel, HOSTILE, K56, K57 } from '../fixtures/dashboard/dashboard-fixture.js';

describe("the dashboard's workers", () => {
  it('shows each worker: host (its id as the title), its images and kernels, builds running of its concurrency, last seen, live or gone since', () => {
    const model = fixtureModel();
    model.live.workers.push({
      worker: 'w2:9',
      host: 'w2',
      running: 0,
      concurrency: 2,
      images: [],
      verify: [],
      lastSeen: '2026-12-08T00:00:01.000Z',
      state: 'gone',
      goneSince: '2026-12-08T00:01:00.000Z',
    });
    const html = renderDashboard(model);
    const rows = [...html.matchAll(/<tr data-worker="[^"]*"[^>]*>[\s\S]*?<\/tr>/g)].map((m) => m[0]);
    expect(rows).toHaveLength(2);
    const esc = HOSTILE.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
    expect(rows[0]).toContain(`<td class="host" title="worker-1${esc}:7">worker-1${esc}</td>`);
    expect(rows[0]).toContain(`<td class="images">debian-12${esc} x86_64: ${K56}, ${K57}${esc} (+3)</td>`);
    expect(rows[0]).toContain('<td class="running">2 / 4</td>');
    expect(rows[0]).toContain('data-state="live"');
    expect(rows[0]).toContain('<td class="state">live</td>');
    expect(rows[1]).toContain('data-state="gone" class="gone"');
    expect(rows[1]).toContain('<td class="state">gone since 2026-12-08T00:01:00.000Z</td>');
    expect(html).toMatch(/id="workers-none" hidden/);
  });

  it('says so when no worker has reported', () => {
    const model = fixtureModel();
    model.live.workers = [];
    expect(renderDashboard(model)).toMatch(/<p class="meta" id="workers-none">No worker has reported.<\/p>/);
  });

  it('images in one line, whatever the model holds', () => {
    expect(
      imagesText([
        { name: 'debian-12', arch: 'x86_64', kernels: ['a', 'b'] },
        { name: 'debian-13', arch: 'aarch64', kernels: [], more: 2 },
      ]),
    ).toBe('debian-12 x86_64: a, b; debian-13 aarch64:  (+2)');
    expect(imagesText(undefined as never)).toBe('');
  });
});
