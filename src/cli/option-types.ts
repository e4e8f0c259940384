import type { AccelChoice } from '../verify/verify-kernel.js';
import type { TableView } from './render.js';

/**
 * The options each command's action receives, as commander parses them. Types only, and apart
 * from both sides: commands/ (which declares the options and loads its action lazily) and
 * actions/ (which runs them) import these, never each other's module, so no import circle runs
 * between a command and its action.
 */

/** `kfarm verify`, and `kfarm build --verify load` (addVerifyOptions in commands/verify.ts) */
export interface VerifyCliOptions {
  accel: AccelChoice;
  cmdline: string;
  bootTimeout: number;
  /** accept a run whose every row is not-verified (default false: exit 1) */
  allowUnverified: boolean;
  /** boot through OVMF Secure Boot, shim, GRUB and the signed kernel (verify/secure-boot/) */
  secureBoot?: boolean;
  /** comma-separated certificate files to enrol as MOKs (default: the out dir's signing-cert.der) */
  mokCert?: string;
}

/** `kfarm build` */
export type BuildCliOptions = {
  kernels?: string;
  out: string;
  concurrency?: number;
  timeout: number;
  memory: number;
  disk: number;
  cpus: number;
  cache: boolean;
  table: TableView;
  directive: string[];
  dkmsOverrides?: string;
  format: string;
  compress: 'auto' | 'none' | 'xz' | 'zstd';
  signKey?: string;
  signCert?: string;
  junit?: string;
  cacheSize?: string;
  verify?: 'load';
  /** build on this kfarm serve farm (actions/build-farm.ts) */
  farm?: string;
  farmTokenFile?: string;
} & VerifyCliOptions &
  PublishTargetCliOptions &
  OciTargetCliOptions;

/** the publish targets, of `kfarm publish` and of `kfarm build` (build, then publish the out dir) */
export interface PublishTargetCliOptions {
  apt?: string;
  dnf?: string;
  repoKey?: string;
  keep?: number;
  baseUrl?: string;
}

/** --oci <registry> and its options (actions/publish-oci.ts), of `kfarm publish` and `kfarm build` */
export interface OciTargetCliOptions {
  oci?: string;
  ociCa?: string;
  ociAuthfile?: string;
  ociInsecure?: boolean;
  ociManifests?: string;
}

/** `kfarm publish` */
export type PublishCliOptions = {
  exportKey?: string;
  serve?: number;
  host: string;
} & PublishTargetCliOptions &
  OciTargetCliOptions;

/** `kfarm images sync` */
export interface ImagesSyncCliOptions {
  arch: string;
  flavours?: string;
  kernels?: string;
  prune?: boolean;
  baseImage?: string;
  mirror?: string;
  securityMirror?: string;
  keyring?: string;
}

/** `kfarm kernels` */
export interface KernelsCliOptions {
  available?: boolean;
  arch?: string;
  json?: boolean;
  mirror?: string;
  securityMirror?: string;
  keyring?: string;
}

/** `kfarm ldtarball` */
export interface LdtarballCliOptions {
  dkmsTree: string;
  sourceTree: string;
  force: boolean;
  maxBytes: string;
  maxEntries: string;
}

/** `kfarm serve` (commands/serve.ts) */
export type ServeCliOptions = {
  listen: { host: string; port: number };
  tlsCert?: string;
  tlsKey?: string;
  concurrency?: number;
  watch?: boolean;
  watchEvery: number;
  watchCron?: string;
  releases?: string;
  arch?: string;
  flavours?: string;
  mirror?: string;
  securityMirror?: string;
  keyring?: string;
  webhook?: string;
  webhookSecretFile?: string;
  signKey?: string;
  signCert?: string;
} & PublishTargetCliOptions &
  OciTargetCliOptions;
