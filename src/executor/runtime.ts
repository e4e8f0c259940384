import type { Readable } from 'node:stream';

/**
 * The container runtime port. Everything outside src/executor/ talks to containers through
 * this interface; docker-runtime.ts is the only implementation and the only dockerode importer.
 */
export interface ImageInfo {
  id: string;
  tags: string[];
  labels: Record<string, string>;
}

export interface IsolatedRun {
  image: string;
  cmd: string[];
  /** uid:gid; builds run as nobody */
  user: string;
  env: Record<string, string>;
  labels: Record<string, string>;
  /** tar archives unpacked before the container starts, each at its path (which must exist) */
  input: Array<{ path: string; tar: Buffer }>;
  /** directory copied out after the container ends (tar), or undefined when it is absent */
  outputPath: string;
  /** the copied-out directory may not be larger than this (a hostile build can write a lot) */
  outputLimitBytes: number;
  tmpfs: Record<string, string>;
  /**
   * memory, processes, CPUs, and the bytes the container may add to its writable layer
   * (everything outside its tmpfs mounts): overlay2 on ext4 cannot cap that, so the runtime
   * watches it and kills the container past the limit
   */
  limits: { memoryBytes: number; pids: number; cpus: number; writableBytes: number };
  timeoutMs: number;
  /** receives stdout+stderr as it comes; the caller caps it */
  onOutput: (chunk: Buffer) => void;
  signal?: AbortSignal;
}

/** why the runtime killed a container before it ended on its own */
export type StopCause = 'timeout' | 'disk-limit' | 'aborted';

export interface IsolatedOutcome {
  exitCode: number;
  /** undefined when the container ended by itself */
  stoppedBy: StopCause | undefined;
  /** the kernel's OOM killer ended a process of the container (its memory limit) */
  oomKilled: boolean;
  /** the output directory as a tar stream's bytes; undefined when the path did not exist */
  output: Buffer | undefined;
  containerId: string;
}

export interface BuildImageRequest {
  /** tar of the build context */
  context: Buffer;
  tag: string;
  buildArgs: Record<string, string>;
  labels: Record<string, string>;
  onLine: (line: string) => void;
}

export interface ContainerRuntime {
  /** throws KfarmError DOCKER_UNREACHABLE with a hint on how to start the engine */
  ping(): Promise<void>;
  /** images that carry the label (any value) */
  listImages(label: string): Promise<ImageInfo[]>;
  inspectImage(ref: string): Promise<ImageInfo | undefined>;
  buildImage(request: BuildImageRequest): Promise<void>;
  importImage(rootfs: Readable, repo: string, tag: string): Promise<void>;
  /** false when no registry answers (offline farms) */
  pullImage(ref: string, timeoutMs: number): Promise<boolean>;
  tagImage(ref: string, repo: string, tag: string): Promise<void>;
  /** runs a short, trusted helper container (with network) and returns its output */
  runHelper(image: string, cmd: string[], input?: Buffer): Promise<{ exitCode: number; output: string }>;
  runIsolated(run: IsolatedRun): Promise<IsolatedOutcome>;
  removeContainer(id: string): Promise<void>;
  /** removes every container with these labels; returns how many */
  removeContainers(labels: Record<string, string>): Promise<number>;
  listContainers(labels: Record<string, string>): Promise<Array<{ id: string; labels: Record<string, string>; running: boolean }>>;
}
