import Docker from 'dockerode';
import { PassThrough, type Readable } from 'node:stream';
import { KfarmError, describeError } from '../errors/kfarm-error.js';
import { settledWithin } from '../util/settled-within.js';
import type { BuildImageRequest, ContainerRuntime, ImageInfo, IsolatedOutcome, IsolatedRun, StopCause } from './runtime.js';
import { PhaseClock } from './phase-clock.js';

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
        ...(request.network ? { networkmode: request.network } : {}),
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
      const stream = await this.docker.importImage(rootfs, { repo, tag });
      await new Promise<void>((resolve, reject) => {
        this.docker.modem.followProgress(stream, (err: Error | null) => (err ? reject(err) : resolve()));
      });
    });
  }

  async pullImage(ref: string, timeoutMs: number, onFailure?: (reason: string) => void): Promise<boolean> {
    // The abort ends the HTTP request, and with it the engine's pull: nothing keeps
    // downloading after kfarm has moved on to debootstrap.
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), timeoutMs);
    let stream: Readable | undefined;
    try {
      stream = (await this.docker.pull(ref, { abortSignal: abort.signal })) as Readable;
      const pulling = stream;
      await new Promise<void>((resolve, reject) => {
        abort.signal.addEventListener('abort', () => reject(new Error(`no answer within ${Math.round(timeoutMs / 1000)} s`)), { once: true });
        this.docker.modem.followProgress(pulling, (err: Error | null, output: Array<{ error?: string }>) => {
          const failed = err?.message ?? output.find((o) => o.error)?.error;
          if (failed) reject(new Error(failed.trim()));
          else resolve();
        });
      });
      return true;
    } catch (err) {
      const reason = abort.signal.aborted ? `no answer within ${Math.round(timeoutMs / 1000)} s` : describeError(err);
      onFailure?.(`pulling ${ref} failed: ${reason}`);
      return false;
    } finally {
      clearTimeout(timer);
      stream?.destroy();
    }
  }

  async tagImage(ref: string, repo: string, tag: string): Promise<void> {
    return engineCall(`tagging ${ref} as ${repo}:${tag}`, async () => {
      await this.docker.getImage(ref).tag({ repo, tag });
    });
  }

  async removeImages(refs: readonly string[]): Promise<{ ok: boolean; output: string }> {
    const problems: string[] = [];
    for (const ref of refs) {
      try {
        await this.docker.getImage(ref).remove();
      } catch (err) {
        if (statusOf(err) !== 404) problems.push(`${ref}: ${describeError(err)}`);
      }
    }
    return { ok: problems.length === 0, output: problems.join('; ') };
  }

  async imageSizes(refs: readonly string[]): Promise<Map<string, number>> {
    return engineCall('an inspect of image sizes', async () => {
      const sizes = new Map<string, number>();
      for (const ref of refs) {
        try {
          const info = (await this.docker.getImage(ref).inspect()) as { Id: string; Size?: number };
          if (typeof info.Size === 'number') sizes.set(info.Id, info.Size);
        } catch (err) {
          if (statusOf(err) !== 404) throw err;
        }
      }
      return sizes;
    });
  }

  async runHelper(image: string, cmd: string[], input?: Buffer, timeoutMs = HELPER_TIMEOUT_MS): Promise<{ exitCode: number; output: string }> {
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
        this.docker.modem.demuxStream(stream, sink, sink);
        await container.start();
        // A helper that outlives its timeout is killed; the wait is bounded too, so an engine
        // that neither kills nor answers cannot hang the caller (the finally removes it).
        const waited = container.wait() as Promise<{ StatusCode: number }>;
        const timedOut = !(await settledWithin(waited, timeoutMs));
        if (timedOut) {
          await container.kill().catch((err: unknown) => {
            if (statusOf(err) !== 409) chunks.push(Buffer.from(`[kfarm] killing the helper failed: ${describeError(err)}\n`));
          });
          await settledWithin(waited, 10_000);
        }
        const { StatusCode } = timedOut ? { StatusCode: -1 } : await waited;
        await new Promise((r) => setTimeout(r, 50));
        const output = Buffer.concat(chunks).toString('utf8');
        if (timedOut) {
          throw new KfarmError('DOCKER_ERROR', `a helper container from ${image} ran longer than ${Math.round(timeoutMs / 1000)} s and was killed`, {
            context: { image, timeoutSec: Math.round(timeoutMs / 1000) },
            hint: `Its last output: ${output.slice(-500).trim() || '(none)'}. A network download that stalls is the usual cause: check the mirror, then run the command again.`,
          });
        }
        return { exitCode: StatusCode, output };
      } finally {
        await removeEventually(container);
      }
    });
  }

  async runIsolated(run: IsolatedRun): Promise<IsolatedOutcome> {
    return engineCall(`a build container from ${run.image}`, async () => {
      const phases = new PhaseClock();
      const container = await this.docker.createContainer({
        Image: run.image,
        Cmd: run.cmd,
        User: run.user,
        Env: Object.entries(run.env).map(([k, v]) => `${k}=${v}`),
        Labels: run.labels,
        NetworkDisabled: true,
        // input on stdin, output on stdout, log on stderr: the root filesystem is read-only
        OpenStdin: true,
        StdinOnce: true,
        AttachStdin: true,
        AttachStdout: true,
        AttachStderr: true,
        Tty: false,
        HostConfig: {
          NetworkMode: 'none',
          CapDrop: ['ALL'],
          CapAdd: run.capAdd,
          SecurityOpt: ['no-new-privileges'],
          ReadonlyRootfs: true,
          // no /dev/shm: every writable path is one of run.tmpfs, each capped in bytes and inodes
          IpcMode: 'none',
          // an init as PID 1 reaps the build's orphans, so killed processes do not linger as zombies
          Init: true,
          Memory: run.limits.memoryBytes,
          MemorySwap: run.limits.memoryBytes,
          PidsLimit: run.limits.pids,
          NanoCpus: Math.round(run.limits.cpus * 1e9),
          Tmpfs: run.tmpfs,
          Devices: (run.devices ?? []).map((d) => ({ PathOnHost: d, PathInContainer: d, CgroupPermissions: 'rw' })),
          // The streams are read live through attach and capped here; docker keeps no copy.
          LogConfig: { Type: 'none', Config: {} },
          AutoRemove: false,
        },
      });
      let stoppedBy: StopCause | 'output-limit' | undefined;
      const stop = (cause: StopCause | 'output-limit') => {
        stoppedBy ??= cause;
        container.kill().catch((err: unknown) => {
          // 404/409: it is already gone or stopped, which is what the kill wanted
          if (statusOf(err) !== 404 && statusOf(err) !== 409) run.onLog(Buffer.from(`[kfarm] killing the container failed: ${describeError(err)}\n`));
        });
      };
      const onAbort = () => stop('aborted');
      // a function, not an inline test: the abort lands between awaits, out of the compiler's sight
      const aborted = () => stoppedBy === 'aborted';
      /** the removal went to the caller with the outcome (deferRemoval) */
      let handedOff = false;
      phases.mark('create');
      try {
        if (run.signal?.aborted) throw new KfarmError('INTERRUPTED', 'interrupted before the container started');
        run.signal?.addEventListener('abort', onAbort, { once: true });
        const stream = await container.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true });
        const stdout = new PassThrough();
        const stderr = new PassThrough();
        const output: Buffer[] = [];
        let outputBytes = 0;
        stdout.on('data', (chunk: Buffer) => {
          outputBytes += chunk.length;
          if (outputBytes > run.outputLimitBytes) stop('output-limit');
          else output.push(chunk);
        });
        stderr.on('data', run.onLog);
        const streamEnded = new Promise<void>((resolve) =>
          stream
            .on('end', resolve)
            .on('close', resolve)
            .on('error', () => resolve()),
        );
        this.docker.modem.demuxStream(stream, stdout, stderr);
        phases.mark('attach');
        // An abort while attaching found nothing running to kill: stop here.
        if (aborted()) throw new KfarmError('INTERRUPTED', 'interrupted before the container started');
        await container.start();
        phases.mark('start');
        // ...and one that came while the engine was starting it may have missed it too.
        if (aborted()) stop('aborted');
        if (run.beforeInput && !aborted()) {
          // started and ready, its input not yet given; an abort ends the wait (the container is killed)
          let onWaitAbort = () => undefined as void;
          const abortedWhileWaiting = new Promise<void>((resolve) => (onWaitAbort = resolve));
          run.signal?.addEventListener('abort', onWaitAbort, { once: true });
          try {
            await Promise.race([run.beforeInput(), abortedWhileWaiting]);
          } finally {
            run.signal?.removeEventListener('abort', onWaitAbort);
          }
          phases.mark('ready');
        }
        const timer = setTimeout(() => stop('timeout'), run.timeoutMs);
        // the input, then end-of-file (the hijacked connection is half-closed)
        stream.write(run.stdin);
        stream.end();
        let exitCode: number;
        try {
          exitCode = ((await container.wait()) as { StatusCode: number }).StatusCode;
        } finally {
          clearTimeout(timer);
        }
        phases.mark('run');
        // The attach stream can trail the exit by a moment: wait for it briefly, and meanwhile
        // ask the engine whether the memory limit ended it (one round trip less in series).
        // (settled into a value at once: a rejection must not go unhandled while the drain waits)
        const inspected = (container.inspect() as Promise<{ State?: { OOMKilled?: boolean } }>).then(
          (info) => ({ info }),
          (err: unknown) => ({ err }),
        );
        await settledWithin(streamEnded, 2000);
        const answer = await inspected;
        if ('err' in answer) throw answer.err;
        const state = answer.info.State;
        phases.mark('inspect');
        if (stoppedBy === 'output-limit') {
          throw new KfarmError('OUTPUT_TOO_LARGE', `the build handed back more than ${run.outputLimitBytes} bytes`, { context: { container: container.id } });
        }
        // Ended on its own: removal may run alongside the caller's unpacking and storing.
        const removed = run.deferRemoval && !stoppedBy ? removeEventually(container).then(() => phases.mark('remove')) : undefined;
        handedOff = removed !== undefined;
        return {
          exitCode,
          stoppedBy,
          oomKilled: state?.OOMKilled === true,
          output: stoppedBy || outputBytes === 0 ? undefined : Buffer.concat(output),
          containerId: container.id,
          phases: phases.done,
          ...(removed ? { removed } : {}),
        };
      } finally {
        run.signal?.removeEventListener('abort', onAbort);
        if (!handedOff) {
          await removeEventually(container);
          phases.mark('remove');
        }
      }
    });
  }

  async removeContainer(id: string): Promise<void> {
    return engineCall(`the removal of container ${id}`, async () => {
      await this.docker
        .getContainer(id)
        .remove({ force: true, v: true })
        .catch((err) => {
          if (statusOf(err) !== 404) throw err;
        });
    });
  }

  async removeContainers(labels: Record<string, string>): Promise<number> {
    return engineCall('the removal of containers', async () => {
      const found = await this.listContainers(labels);
      // every one is tried; one already gone (404) is fine, any other failure is reported
      const removed = await Promise.allSettled(found.map((c) => this.docker.getContainer(c.id).remove({ force: true, v: true })));
      const failed = removed.find((r): r is PromiseRejectedResult => r.status === 'rejected' && statusOf(r.reason) !== 404);
      if (failed) throw failed.reason;
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
}

function statusOf(err: unknown): number | undefined {
  return typeof err === 'object' && err !== null && 'statusCode' in err ? Number(err.statusCode) : undefined;
}

function bufferStream(buffer: Buffer): Readable {
  const stream = new PassThrough();
  stream.end(buffer);
  return stream;
}

/** A helper (apt-get in a base image) that takes longer than this is stuck, not slow. */
const HELPER_TIMEOUT_MS = 30 * 60_000;

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
      hint: "See `docker info` and the engine log (`journalctl -u docker`, or dockerd's own output). Restarting the engine clears most of these; kernels that finished are kept, so rerunning redoes only the rest.",
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
