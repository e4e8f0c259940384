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
  /** uid:gid the container starts as */
  user: string;
  /** the only capabilities the container keeps (all others are dropped) */
  capAdd: string[];
  /** host devices passed in as they are (the verifier's /dev/kvm); none for builds */
  devices?: string[];
  env: Record<string, string>;
  labels: Record<string, string>;
  /**
   * written to the container's stdin, then closed: the root filesystem is read-only, so the
   * engine cannot unpack archives into it, and tmpfs contents vanish when the container stops
   */
  stdin: Buffer;
  /** stdout (the container's output, a tar) is kept up to this many bytes; past it the container is killed */
  outputLimitBytes: number;
  /** the only writable paths (the root filesystem is read-only): path -> tmpfs options with size= and nr_inodes= */
  tmpfs: Record<string, string>;
  limits: { memoryBytes: number; pids: number; cpus: number };
  timeoutMs: number;
  /** receives stderr (the build log) as it comes; the caller caps it */
  onLog: (chunk: Buffer) => void;
  signal?: AbortSignal;
  /**
   * A container that ended on its own is removed while the caller goes on (unpacking, storing
   * results): the outcome's `removed` settles when it is gone, and the caller must await it
   * before it reports the job done. Every other ending still removes before returning.
   */
  deferRemoval?: boolean;
  /**
   * Awaited once the container has started and before its input is written and its timeout
   * runs: the caller holds the container ready (its create and start done) until, say, a
   * compile slot is free. An abort meanwhile kills it as usual.
   */
  beforeInput?: () => Promise<void>;
}

/** why the runtime killed a container before it ended on its own */
export type StopCause = 'timeout' | 'aborted';

export interface IsolatedOutcome {
  exitCode: number;
  /** undefined when the container ended by itself */
  stoppedBy: StopCause | undefined;
  /** the kernel's OOM killer ended a process of the container (its memory limit) */
  oomKilled: boolean;
  /** what the container wrote on stdout; undefined when it wrote nothing */
  output: Buffer | undefined;
  containerId: string;
  /** milliseconds of each phase of the container's life (create, attach, start, run, drain, inspect, remove) */
  phases?: Record<string, number>;
  /** with deferRemoval: settles (never rejects) once the container is removed */
  removed?: Promise<void>;
}

export interface BuildImageRequest {
  /** tar of the build context */
  context: Buffer;
  tag: string;
  buildArgs: Record<string, string>;
  labels: Record<string, string>;
  onLine: (line: string) => void;
  /** the build's network: 'host' lets apt in it reach a mirror on the host's loopback; default Docker's */
  network?: 'host';
}

export interface ContainerRuntime {
  /** throws KfarmError DOCKER_UNREACHABLE with a hint on how to start the engine */
  ping(): Promise<void>;
  /** images that carry the label (any value) */
  listImages(label: string): Promise<ImageInfo[]>;
  inspectImage(ref: string): Promise<ImageInfo | undefined>;
  buildImage(request: BuildImageRequest): Promise<void>;
  importImage(rootfs: Readable, repo: string, tag: string): Promise<void>;
  /**
   * false when no registry answered within timeoutMs (offline farms); the pull is then
   * abandoned (its request aborted), and onFailure hears why
   */
  pullImage(ref: string, timeoutMs: number, onFailure?: (reason: string) => void): Promise<boolean>;
  tagImage(ref: string, repo: string, tag: string): Promise<void>;
  /**
   * Removes these tags or ids (a tag of an image others are built FROM only untags it); ok is
   * false, with what the engine said, when one could not be removed. A ref already gone is fine.
   */
  removeImages(refs: readonly string[]): Promise<{ ok: boolean; output: string }>;
  /** bytes of each image by id, layers shared with others included; refs that are gone are left out */
  imageSizes(refs: readonly string[]): Promise<Map<string, number>>;
  /**
   * runs a short, trusted helper container (with network) and returns its output; killed and
   * removed past timeoutMs (default 30 minutes), which is a DOCKER_ERROR
   */
  runHelper(image: string, cmd: string[], input?: Buffer, timeoutMs?: number): Promise<{ exitCode: number; output: string }>;
  runIsolated(run: IsolatedRun): Promise<IsolatedOutcome>;
  removeContainer(id: string): Promise<void>;
  /** removes every container with these labels; returns how many */
  removeContainers(labels: Record<string, string>): Promise<number>;
  listContainers(labels: Record<string, string>): Promise<Array<{ id: string; labels: Record<string, string>; running: boolean }>>;
}
