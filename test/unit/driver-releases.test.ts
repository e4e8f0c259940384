import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/paths.js';

/**
 * driver.sh keeps every difference between the Debian releases' dkms in its release table
 * (one row per VERSION_ID, features asked with `release_has`), so a new release is one row.
 * These checks keep it so: no release test outside the table, and the features the rows give,
 * the ones the table documents and the ones the driver asks for are the same set.
 */
const script = readFileSync(path.join(packageRoot, 'src', 'dkms', 'driver.sh'), 'utf8');
const tableStart = script.indexOf('case $release_id in');
const tableEnd = script.indexOf('\nesac\n', tableStart);
const table = script.slice(tableStart, tableEnd);
const rest = script.slice(0, tableStart) + script.slice(tableEnd);

const rowFeatures = new Set([...table.matchAll(/release_features="([^"]*)"/g)].flatMap((m) => (m[1] ?? '').split(/\s+/).filter(Boolean)));
const documented = new Set([...script.matchAll(/^# {3}([a-z0-9-]+(?:, [a-z0-9-]+)*)\s{2,}/gm)].flatMap((m) => (m[1] ?? '').split(', ')));
const asked = new Set([...rest.matchAll(/release_has ([a-z0-9-]+)/g)].map((m) => m[1] ?? ''));

describe('driver.sh release table', () => {
  it('has a row for each supported VERSION_ID and an error for any other', () => {
    expect([...table.matchAll(/^ {4}([\w|]+)\) dialect=/gm)].map((m) => m[1])).toEqual(['11', '12', '13|forky']);
    expect(table).toMatch(/^ {4}\*\) dialect="" /m);
  });

  it('tests no release outside the table (only release_has)', () => {
    expect(rest.match(/\$dialect\s*[!=]=|case \$dialect|\$release_id\s*[!=]=|VERSION_ID\s*[!=]=/g)).toBeNull();
  });

  it('documents every feature a row gives, and the driver asks for each', () => {
    expect(rowFeatures.size).toBeGreaterThan(10);
    expect(
      [...rowFeatures].filter((f) => !documented.has(f)),
      'features given but not documented',
    ).toEqual([]);
    expect(
      [...rowFeatures].filter((f) => !asked.has(f)),
      'features given but never asked',
    ).toEqual([]);
    expect(
      [...asked].filter((f) => !rowFeatures.has(f)),
      'features asked but no release has',
    ).toEqual([]);
    expect(
      [...documented].filter((f) => !rowFeatures.has(f)),
      'features documented but no release has',
    ).toEqual([]);
  });
});
