import Docker from 'dockerode';
import { PassThrough, type Readable } from 'node:stream';
import { KfarmError, describeError } from '../errors/kfarm-error.js';
import { settledWithin } from '../util/settled-within.js';
import type { BuildImageRequest, ContainerRuntime, ImageInfo, IsolatedOutcome, IsolatedRun, StopCause } from './runtime.js';

/** dockerode behind the ContainerRuntime port. DOCKER_HOST is honoured by dockerode itself. */
export class DockerRuntime implements ContainerRuntime {
  private readonly docker: Docker;

  constructor(docker: Docker = new Docker()) {
    this.docker = docker;
  }

  async ping(): Promise<void> {
    try {
      await this.docker.ping();
    } catch (err) {
      const where = process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
      throw new KfarmError('DOCKER_UNREACHABLE', `cannot reach the Docker engine at ${where}: ${describeError(err)}`, {
        cause: err,
        hint: 'Start it (`systemctl start docker`, or `dockerd &` where there is no systemd, as root), or run `bash scripts/setup.sh`, which installs and starts it. Set DOCKER_HOST to use another engine.',
      });
    }
  }

  async listImages(label: string): Promise<ImageInfo[]> {
    return engineCall('a list of images', async () => {
      const images = await this.docker.listImages({ filters: JSON.stringify({ label: [label] }) });
      return images.map((i) => ({ id: i.Id, tags: (i.RepoTags ?? []).filter((t) => t !== '<none>:<none>'), labels: i.Labels ?? {} }));
    });
  }

  async inspectImage(ref: string): Promise<ImageInfo | undefined> {
    return engineCall(`an inspect of image ${ref}`, async () => {
      try {
        const info = await this.docker.getImage(ref).inspect();
        return { id: info.Id, tags: info.RepoTags ?? [], labels: info.Config?.Labels ?? {} };
      } catch (err) {
        if (statusOf(err) === 404) return undefined;
        throw err;
      }
    });
  }

  async buildImage(request: BuildImageRequest): Promise<void> {
    return engineCall(`the build of image ${request.tag}`, async () => {
      const stream = await this.docker.buildImage(bufferStream(request.context), {
        t: request.tag,
        buildargs: request.buildArgs,
        labels: request.labels,
        rm: true,
        forcerm: true,
      });
      await new Promise<void>((resolve, reject) => {
        this.docker.modem.followProgress(
          stream,
          (err: Error | null, output: Array<{ error?: string }>) => {
            const failed = err ?? output.find((o) => o.error);
            if (failed) {
              const message = failed instanceof Error ? failed.message : (failed.error ?? 'unknown error');
              reject(new KfarmError('IMAGE_BUILD_FAILED', `docker build of ${request.tag} failed: ${message.trim()}`, { context: { image: request.tag } }));
            } else resolve();
          },
          (event: { stream?: string; status?: string }) => {
            const text = event.stream ?? event.status;
            if (text) for (const line of text.split('\n')) if (line.trim()) request.onLine(line);
          },
        );
      });
    });
  }

  async importImage(rootfs: Readable, repo: string, tag: string): Promise<void> {
    return engineCall(`the import of image ${repo}:${tag}`, async () => {
      const stream = await this.docker.importImage(rootfs as unknown as string, { repo, tag });
      await new Promise<void>((resolve, reject) => {
        this.docker.modem.followProgress(stream, (err: Error | null) => (err ? reject(err) : resolve()));
      });
    });
  }

  async pullImage(ref: string, timeoutMs: number): Promise<boolean> {
    try {
      const pulled = (async () => {
        const stream = await this.docker.pull(ref);
        await new Promise<void>((resolve, reject) => {
          this.docker.modem.followProgress(stream, (err: Error | null, output: Array<{ error?: string }>) =>
            err || output.some((o) => o.error) ? reject(err ?? new Error('pull failed')) : resolve(),
          );
        });
      })();
      const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('pull timed out')), timeoutMs).unref());
      await Promise.race([pulled, timeout]);
      return true;
    } catch {
      return false;
    }
  }

  async tagImage(ref: string, repo: string, tag: string): Promise<void> {
    return engineCall(`tagging ${ref} as ${repo}:${tag}`, async () => {
      await this.docker.getImage(ref).tag({ repo, tag });
    });
  }

  async runHelper(image: string, cmd: string[], input?: Buffer): Promise<{ exitCode: number; output: string }> {
    return engineCall(`a helper container from ${image}`, async () => {
      const container = await this.docker.createContainer({
        Image: image,
        Cmd: cmd,
        Labels: { 'kfarm.helper': '1' },
        HostConfig: { AutoRemove: false },
      });
      try {
        if (input) await container.putArchive(input, { path: '/' });
        const chunks: Buffer[] = [];
        const stream = await container.attach({ stream: true, stdout: true, stderr: true });
        const sink = new PassThrough();
        sink.on('data', (c: Buffer) => chunks.push(c));
        container.modem.demuxStream(stream, sink, sink);
        await container.start();
        const { StatusCode } = (await container.wait()) as { StatusCode: number };
        await new Promise((r) => setTimeout(r, 50));
        return { exitCode: StatusCode, output: Buffer.concat(chunks).toString('utf8') };
      } finally {
        await container.remove({ force: true, v: true }).catch(() => undefined);
      }
    });
  }

  async runIsolated(run: IsolatedRun): Promise<IsolatedOutcome> {
    return engineCall(`a build container from ${run.image}`, async () => {
      const container = await this.docker.createContainer({
        Image: run.image,
        Cmd: run.cmd,
        User: run.user,
        Env: Object.entries(run.env).map(([k, v]) => `${k}=${v}`),
        Labels: run.labels,
        NetworkDisabled: true,
        HostConfig: {
          NetworkMode: 'none',
          CapDrop: ['ALL'],
          SecurityOpt: ['no-new-privileges'],
          Memory: run.limits.memoryBytes,
          MemorySwap: run.limits.memoryBytes,
          PidsLimit: run.limits.pids,
          NanoCpus: Math.round(run.limits.cpus * 1e9),
          Tmpfs: run.tmpfs,
          // The stream is read live through attach and capped by the caller; docker keeps no copy.
          LogConfig: { Type: 'none', Config: {} },
          AutoRemove: false,
        },
      });
      let stoppedBy: StopCause | undefined;
      const stop = (cause: StopCause) => {
        stoppedBy ??= cause;
        container.kill().catch(() => undefined);
      };
      const onAbort = () => stop('aborted');
      // a function, not an inline test: the abort lands between awaits, out of the compiler's sight
      const aborted = () => stoppedBy === 'aborted';
      let watch: DiskWatch | undefined;
      try {
        if (run.signal?.aborted) throw new KfarmError('INTERRUPTED', 'interrupted before the container started');
        run.signal?.addEventListener('abort', onAbort, { once: true });
        for (const part of run.input) await container.putArchive(part.tar, { path: part.path });
        const stream = await container.attach({ stream: true, stdout: true, stderr: true });
        const sink = new PassThrough();
        sink.on('data', run.onOutput);
        const streamEnded = new Promise<void>((resolve) => stream.on('end', resolve).on('close', resolve).on('error', () => resolve()));
        container.modem.demuxStream(stream, sink, sink);
        // An abort while the input was being copied found nothing running to kill: stop here.
        if (aborted()) throw new KfarmError('INTERRUPTED', 'interrupted before the container started');
        await container.start();
        // ...and one that came while the engine was starting it may have missed it too.
        if (aborted()) await container.kill().catch(() => undefined);
        const timer = setTimeout(() => stop('timeout'), run.timeoutMs);
        watch = watchWritableLayer(container, run.limits.writableBytes, () => stop('disk-limit'));
        let exitCode: number;
        try {
          exitCode = ((await container.wait()) as { StatusCode: number }).StatusCode;
        } finally {
          clearTimeout(timer);
          watch.stop();
        }
        // The attach stream can trail the exit by a moment; wait for it briefly.
        await settledWithin(streamEnded, 2000);
        const state = ((await container.inspect()) as { State?: { OOMKilled?: boolean } }).State;
        const output = stoppedBy ? undefined : await this.copyOut(container, run.outputPath, run.outputLimitBytes);
        return { exitCode, stoppedBy, oomKilled: state?.OOMKilled === true, output, containerId: container.id };
      } finally {
        run.signal?.removeEventListener('abort', onAbort);
        await removeEventually(container);
      }
    });
  }

  async removeContainer(id: string): Promise<void> {
    return engineCall(`the removal of container ${id}`, async () => {
      await this.docker.getContainer(id).remove({ force: true, v: true }).catch((err) => {
        if (statusOf(err) !== 404) throw err;
      });
    });
  }

  async removeContainers(labels: Record<string, string>): Promise<number> {
    return engineCall('the removal of containers', async () => {
      const found = await this.listContainers(labels);
      await Promise.all(found.map((c) => this.docker.getContainer(c.id).remove({ force: true, v: true }).catch(() => undefined)));
      return found.length;
    });
  }

  async listContainers(labels: Record<string, string>): Promise<Array<{ id: string; labels: Record<string, string>; running: boolean }>> {
    return engineCall('a list of containers', async () => {
      const label = Object.entries(labels).map(([k, v]) => (v === '' ? k : `${k}=${v}`));
      const list = await this.docker.listContainers({ all: true, filters: JSON.stringify({ label }) });
      return list.map((c) => ({ id: c.Id, labels: c.Labels ?? {}, running: c.State === 'running' }));
    });
  }

  private async copyOut(container: Docker.Container, path: string, limit: number): Promise<Buffer | undefined> {
    try {
      const stream = (await container.getArchive({ path })) as unknown as Readable;
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of stream) {
        size += (chunk as Buffer).length;
        if (size > limit) {
          stream.destroy();
          throw new KfarmError('OUTPUT_TOO_LARGE', `the build left more than ${limit} bytes in ${path}`, { context: { container: container.id } });
        }
        chunks.push(chunk as Buffer);
      }
      return Buffer.concat(chunks);
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw err;
    }
  }
}

function statusOf(err: unknown): number | undefined {
  return typeof err === 'object' && err !== null && 'statusCode' in err ? Number((err as { statusCode: unknown }).statusCode) : undefined;
}

function bufferStream(buffer: Buffer): Readable {
  const stream = new PassThrough();
  stream.end(buffer);
  return stream;
}

/** How often the writable layer of a running build is measured; a runaway writer at disk speed overshoots by about this long. */
const DISK_WATCH_INTERVAL_MS = 1000;

interface DiskWatch {
  stop(): void;
}

/**
 * Polls the container's writable-layer size (what `docker ps -s` shows) and calls onExceeded
 * once it passes the limit. overlay2 can only cap it on xfs with project quotas, so this is
 * the cap that works on every engine; the hot paths (build tree, /tmp) are size-capped tmpfs.
 */
function watchWritableLayer(container: Docker.Container, limitBytes: number, onExceeded: () => void): DiskWatch {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const tick = async () => {
    try {
      const info = (await container.inspect({ size: true } as Docker.ContainerInspectOptions)) as { SizeRw?: number };
      // (size=1 is a query parameter the engine honours; the typings do not list it)
      if (!stopped && (info.SizeRw ?? 0) > limitBytes) {
        stopped = true;
        onExceeded();
        return;
      }
    } catch {
      // the container ended between two ticks: the wait() in runIsolated sees it
    }
    if (!stopped) timer = setTimeout(() => void tick(), DISK_WATCH_INTERVAL_MS);
  };
  timer = setTimeout(() => void tick(), DISK_WATCH_INTERVAL_MS);
  return {
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}

/**
 * An engine call that fails for a reason of the engine's (HTTP 500, a broken connection) becomes
 * a DOCKER_ERROR that names the operation; errors kfarm raised itself pass through unchanged.
 */
async function engineCall<T>(operation: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof KfarmError) throw err;
    const status = statusOf(err);
    throw new KfarmError('DOCKER_ERROR', `the Docker engine failed during ${operation}${status ? ` (HTTP ${status})` : ''}: ${describeError(err)}`, {
      cause: err,
      context: { operation, ...(status ? { status } : {}) },
      hint: 'See `docker info` and the engine log (`journalctl -u docker`, or dockerd\'s own output). Restarting the engine clears most of these; kernels that finished are kept, so rerunning redoes only the rest.',
    });
  }
}


/**
 * Removes a build container; when the engine is away (restarting), keeps trying in the
 * background for a minute, so an engine restart leaves no stopped containers behind. The
 * timers are unref'd: they never keep a finished CLI alive (the next kfarm process reaps).
 */
async function removeEventually(container: Docker.Container, triesLeft = 20): Promise<void> {
  try {
    await container.remove({ force: true, v: true });
  } catch (err) {
    if (statusOf(err) === 404 || triesLeft <= 0) return;
    setTimeout(() => void removeEventually(container, triesLeft - 1), 3000).unref();
  }
}
