import { describe, expect, it } from 'vitest';
import { parseDriverResult } from '../../src/dkms/driver-result.js';

/** Counterexamples fast-check found (test/fuzz), kept as plain cases. */
describe('fuzz regressions', () => {
  it('driver result: an unknown module suffix after a bad PACKAGE_VERSION does not carry the unchecked version out', () => {
    // found by dkms.test.ts: the early return for the suffix skipped the name checks
    const r = parseDriverResult('package_version\t\t\nmodule_suffix');
    expect(r.verdict).toBe('failed');
    expect(r.reason).toBe('driver-error');
    expect(r.packageVersion).toBeUndefined();
    expect(parseDriverResult('package_name\t../x\nmodule_suffix\t.tar').packageName).toBeUndefined();
    expect(parseDriverResult('package_name\thello\nmodule_suffix\t.tar').packageName).toBe('hello');
  });
});

describe('fuzz regressions: Debian versions', () => {
  it('digit runs past 2^53 and past a double (309 digits) still compare by value', async () => {
    // found by archive-index.test.ts: Number() made these equal (and 309 digits gave NaN)
    const { compareDebianVersions } = await import('../../src/archive/debian-version.js');
    expect(compareDebianVersions('9007199254740993', '9007199254740992')).toBeGreaterThan(0);
    const big = '1'.repeat(400);
    expect(compareDebianVersions(`${big}0`, big)).toBeGreaterThan(0);
    expect(compareDebianVersions(`${big}a`, `${big}b`)).toBeLessThan(0);
    expect(compareDebianVersions('1.007', '1.7')).toBe(0);
  });
});

describe('fuzz regressions: a tar cut short', () => {
  /**
   * found by tar.test.ts: a tar whose last file is cut short failed the reader's promise AND
   * threw "Unexpected end of data" from the entry's stream, which nobody listened to: an
   * uncaught exception, the end of a `kfarm serve` sent such an upload. Vitest reports an
   * uncaught exception as an error of the run, and the listener below makes this test fail too.
   */
  async function truncated(): Promise<Buffer> {
    const { default: tar } = await import('tar-stream');
    const pack = tar.pack();
    const chunks: Buffer[] = [];
    pack.on('data', (c: unknown) => chunks.push(c as Buffer));
    pack.entry({ name: 'dkms.conf', type: 'file' }, Buffer.from('PACKAGE_NAME=x\n'.repeat(100)));
    pack.finalize();
    await new Promise<void>((resolve) => pack.on('end', () => resolve()));
    return Buffer.concat(chunks).subarray(0, 700);
  }

  it('every tar reader refuses it, and nothing is thrown past the promise', async () => {
    const { KfarmError } = await import('../../src/errors/kfarm-error.js');
    const { extractTar } = await import('../../src/executor/archive.js');
    const { readSourceTar } = await import('../../src/source/read-source-tar.js');
    const { readTarball } = await import('../../src/ldtarball/read-tarball.js');
    const { debFile } = await import('../../src/archive/deb-file.js');
    const { acceptSource } = await import('../../src/service/source-upload.js');
    const { servicePaths } = await import('../../src/service/service-paths.js');
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const path = await import('node:path');
    const uncaught: unknown[] = [];
    const listen = (err: unknown) => uncaught.push(err);
    process.on('uncaughtException', listen);
    const dir = mkdtempSync(path.join(tmpdir(), 'kfarm-fuzz-reg-'));
    try {
      const t = await truncated();
      await expect(extractTar(t, { maxBytes: 1 << 20, maxEntries: 10, allowSymlinks: false }, 'x')).rejects.toThrow(/end of data/);
      await expect(readSourceTar(t, { maxBytes: 1 << 20, maxEntries: 10 }, 'x')).rejects.toThrow(/end of data/);
      writeFileSync(path.join(dir, 't.tar'), t);
      await expect(readTarball(path.join(dir, 't.tar'), { maxBytes: 1 << 20, maxEntries: 10 })).rejects.toBeInstanceOf(KfarmError);
      const member = (name: string, data: Buffer) => {
        const h = Buffer.alloc(60, ' ');
        h.write(name, 0, 'latin1');
        h.write(String(data.length), 48, 'latin1');
        h.write('`\n', 58, 'latin1');
        return Buffer.concat([h, data, data.length % 2 ? Buffer.from('\n') : Buffer.alloc(0)]);
      };
      const deb = Buffer.concat([Buffer.from('!<arch>\n'), member('debian-binary', Buffer.from('2.0\n')), member('data.tar', t)]);
      await expect(debFile(deb, './dkms.conf', 'a.deb')).rejects.toBeInstanceOf(KfarmError);
      await expect(acceptSource(t, servicePaths(path.join(dir, 'state')), path.join(dir, 'scratch'))).rejects.toBeInstanceOf(KfarmError);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(uncaught).toEqual([]);
    } finally {
      process.off('uncaughtException', listen);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('fuzz regressions: a name twice in an upload', () => {
  it('is refused as UNSAFE_ARCHIVE, not an EEXIST from writing the tree', async () => {
    // found by tar.test.ts: [dkms.conf, dkms.conf] reached writeSourceTree, whose O_EXCL open threw a bare EEXIST
    const { default: tar } = await import('tar-stream');
    const { readSourceTar } = await import('../../src/source/read-source-tar.js');
    const pack = tar.pack();
    const chunks: Buffer[] = [];
    pack.on('data', (c: unknown) => chunks.push(c as Buffer));
    pack.entry({ name: 'dkms.conf', type: 'file' }, Buffer.from('PACKAGE_NAME=x\n'));
    pack.entry({ name: 'd', type: 'directory' });
    pack.entry({ name: 'd/', type: 'directory' });
    pack.entry({ name: './dkms.conf', type: 'file' }, Buffer.from('PACKAGE_NAME=y\n'));
    pack.finalize();
    await new Promise<void>((resolve) => pack.on('end', () => resolve()));
    await expect(readSourceTar(Buffer.concat(chunks), { maxBytes: 1 << 20, maxEntries: 10 }, 'x')).rejects.toMatchObject({
      code: 'UNSAFE_ARCHIVE',
      message: expect.stringMatching(/dkms.conf appears twice/),
    });
  });
});

describe('fuzz regressions: a file named "" or "."', () => {
  it('is refused by the tar readers: it would name the tree itself', async () => {
    // found by tar.test.ts: a file entry named "" became the path "", and writing the tree opened the tree dir itself (EEXIST)
    const { default: tar } = await import('tar-stream');
    const { readSourceTar } = await import('../../src/source/read-source-tar.js');
    const { extractTar } = await import('../../src/executor/archive.js');
    for (const name of ['', '.', './']) {
      const pack = tar.pack();
      const chunks: Buffer[] = [];
      pack.on('data', (c: unknown) => chunks.push(c as Buffer));
      pack.entry({ name: './', type: 'directory' });
      pack.entry({ name, type: 'file' }, Buffer.from('x'));
      pack.finalize();
      await new Promise<void>((resolve) => pack.on('end', () => resolve()));
      const t = Buffer.concat(chunks);
      await expect(readSourceTar(t, { maxBytes: 1 << 20, maxEntries: 10 }, 'x')).rejects.toMatchObject({ code: 'UNSAFE_ARCHIVE' });
      await expect(extractTar(t, { maxBytes: 1 << 20, maxEntries: 10, allowSymlinks: false }, 'x')).rejects.toMatchObject({ code: 'UNSAFE_ARCHIVE' });
    }
  });
});

describe('fuzz regressions: the QEMU console parser is linear', () => {
  // found by console-cli.test.ts: `version magic '.*' should be '` and the unanchored marker regex
  // each cost a line's length squared (a hostile module writes the console)
  it('a long line repeating "version magic \'" and one repeating the marker take milliseconds', async () => {
    const { parseConsole } = await import('../../src/verify/console-parse.js');
    const timed = (text: string) => {
      const start = performance.now();
      parseConsole(text, 'n0nce', 'timeout');
      return performance.now() - start;
    };
    expect(timed(`[ 1.000000] ${"version magic '".repeat(20_000)}`)).toBeLessThan(1000);
    expect(timed(`${'@@kfarm-n0nce insmod '.repeat(10_000)}  x`)).toBeLessThan(1000);
    // at the longest line still read for markers, many lines stay cheap
    const line = `${'@@kfarm-n0nce insmod '.repeat(95)}  x`;
    expect(timed(Array.from({ length: 300 }, () => line).join('\n'))).toBeLessThan(1000);
  });
});

describe('fuzz regressions: kernel globs', () => {
  it('a glob of many stars against a long kernel answers at once (it was a regex that backtracked without end)', async () => {
    // found by console-cli.test.ts: `*` became `.*`, and '*' x 30 + 'x' against a 66-character kernel did not finish
    const { selectKernels } = await import('../../src/matrix/kernel-selector.js');
    const { KfarmError } = await import('../../src/errors/kfarm-error.js');
    const t = [{ kernel: `${'a'.repeat(60)}-amd64`, arch: 'x86_64', image: 'debian-12', imageRef: 'r', imageId: 'i' }];
    const start = performance.now();
    expect(() => selectKernels(`${'*'.repeat(30)}x`, t)).toThrow(KfarmError);
    expect(() => selectKernels(`${'*a'.repeat(40)}x`, t)).toThrow(KfarmError);
    expect(selectKernels(`${'*a'.repeat(20)}*-amd64`, t)).toHaveLength(1);
    expect(performance.now() - start).toBeLessThan(1000);
  });
});

describe('fuzz regressions: event streams', () => {
  it('an event of many short data lines is held to the 16 MiB cap, as one long line is', async () => {
    // found reading parseSse for service.test.ts: the cap was on the line buffer only, and data lines were joined without one
    const { parseSse } = await import('../../src/service/client/farm-client.js');
    const line = new TextEncoder().encode(`data: ${'x'.repeat(1023)}\n`.repeat(1024)); // 1 MiB of lines, no blank one
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        if (sent++ < 20) c.enqueue(line);
        else c.close();
      },
    });
    const drain = async () => {
      for await (const e of parseSse(body)) void e;
    };
    await expect(drain()).rejects.toThrow('an event longer than 16 MiB');
  });
});

describe('fuzz regressions: a file and a directory of one name in an upload', () => {
  it('is refused as UNSAFE_ARCHIVE, in either order, not an EEXIST from writing the tree', async () => {
    // found by the long run of tar.test.ts: [dkms.conf, top/x.c, top (a file)] reached writeSourceTree
    const { default: tar } = await import('tar-stream');
    const { readSourceTar } = await import('../../src/source/read-source-tar.js');
    for (const order of [
      ['top/x.c', 'top'],
      ['top', 'top/x.c'],
      ['top', 'top/sub/x.c'],
    ]) {
      const pack = tar.pack();
      const chunks: Buffer[] = [];
      pack.on('data', (c: unknown) => chunks.push(c as Buffer));
      pack.entry({ name: 'dkms.conf', type: 'file' }, Buffer.from('PACKAGE_NAME=x\n'));
      for (const name of order) pack.entry({ name, type: 'file' }, Buffer.from('x'));
      pack.finalize();
      await new Promise<void>((resolve) => pack.on('end', () => resolve()));
      await expect(readSourceTar(Buffer.concat(chunks), { maxBytes: 1 << 20, maxEntries: 10 }, 'x')).rejects.toMatchObject({ code: 'UNSAFE_ARCHIVE' });
      // extractTar (a build's output, a farm's out dir) holds its entries to the same rule
      const { extractTar } = await import('../../src/executor/archive.js');
      await expect(extractTar(Buffer.concat(chunks), { maxBytes: 1 << 20, maxEntries: 10, allowSymlinks: false }, 'x')).rejects.toMatchObject({ code: 'UNSAFE_ARCHIVE' });
    }
  });
});
