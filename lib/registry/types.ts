/**
 * Options every registry operation takes. TLS and credentials are per
 * registry host, never global: `--insecure` on a build that pushes to Gitea
 * skips verification for Gitea only, not for the registry the base image
 * comes from.
 */
import type { ProgressListener } from '../progress/events.js';

export interface Credentials {
  username: string;
  password: string;
}

export interface RegistryOptions {
  /** Hosts (`host` or `host:port`, as in the reference) whose TLS certificate is not verified. */
  insecureRegistries?: string[];
  /** PEM bundle trusted in addition to the system CAs (all registries of this call). */
  caFile?: string;
  /** certs.d-style directory: `<dir>/<host:port>/{ca.crt,*.crt}`. */
  certDir?: string;
  /**
   * Explicit credentials (`--creds`). Sent only to the hosts in
   * `credentialsFor`, as are `OCISTACK_USERNAME`/`OCISTACK_PASSWORD`. Never to
   * a base image's registry or an ADD URL's host.
   */
  credentials?: Credentials;
  /**
   * Hosts (`host:port` as in references, `docker.io`; `*` for all) that
   * `credentials` and `OCISTACK_USERNAME`/`OCISTACK_PASSWORD` apply to. When
   * unset, each operation sets it to its targets: `build()` the hosts of its
   * tags (none without tags), `pushImage` its tags' hosts, `pullImage` the
   * pulled reference's host, `copyImage` the destination's registry (the
   * source's when the destination is not a registry). `[]` means no host.
   */
  credentialsFor?: string[];
  /**
   * Credentials per registry host, e.g. `{ 'localhost:5000': { username, password } }`,
   * for any registry of the call (base images included). They win over
   * `credentials`, the environment and auth files for their host.
   */
  credentialsByHost?: Record<string, Credentials>;
  /** Environment to read OCISTACK_USERNAME/PASSWORD, REGISTRY_AUTH_FILE, HOME... (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Chunk size for chunked blob uploads, bytes. */
  chunkSize?: number;
  /** Plain http for these hosts (`--plain-http`; tests, localhost registries). */
  plainHttpRegistries?: string[];
  /**
   * Hosts tried over HTTPS (without certificate verification) and, should the
   * HTTPS attempt fail to connect or meet a plain-HTTP server, over plain HTTP:
   * skopeo's `--tls-verify=false`. Implies `insecureRegistries` for them.
   */
  httpFallbackRegistries?: string[];
  /**
   * Time limits of every request, ms (`--timeout` sets all three). Defaults:
   * connect 30 s and TLS handshake 10 s (Docker's and containers/image's
   * transport), idle 30 s: no traffic for that long while waiting for an
   * answer, uploading or downloading is a stall; it is retried like a network
   * error and then reported as REGISTRY_TIMEOUT naming the registry.
   */
  timeouts?: RegistryTimeouts;
  /**
   * Aborting it destroys every request in flight and ends retries and their
   * waits: the operation rejects with an OcistackError of code `ABORTED`
   * (the signal's reason itself when that is an OcistackError), never retried,
   * and no tag is written after the abort.
   */
  signal?: AbortSignal;
  onProgress?: ProgressListener;
  /**
   * Retry policy for network errors, 5xx and 429 (extension; defaults:
   * 6 attempts, 200 ms doubling to at most 5 s, `Retry-After` honoured up to 30 s).
   */
  retry?: RetryPolicy;
  /** Blobs transferred at the same time (extension; default 4). */
  concurrency?: number;
}

export interface RegistryTimeouts {
  /** TCP connect (DNS lookup included). Default 30000. */
  connectMs?: number;
  /** TLS handshake after the connect. Default 10000. */
  tlsMs?: number;
  /** Longest silence on a connected socket, either direction. Default 30000. */
  idleMs?: number;
}

export interface RetryPolicy {
  /** Tries per request, the first included. */
  attempts?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
}
