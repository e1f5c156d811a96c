/**
 * IDPBuilder stacks (issue 10): the shapes the stack modules hand each other.
 *
 *   discover.ts / config.ts / references.ts  -> StackModel   (what is in DIR)
 *   cluster.ts / credentials.ts / trust.ts   -> GiteaAccess  (where and how to push)
 *   batch.ts                                 -> StackResult  (build/push every image)
 *
 * Data flows one way: the model and the access are computed first (no build
 * work before every name is checked), then the batch builds with lib/engine.
 */
import type { Credentials, RegistryOptions } from '../registry/types.js';

/** A place in a stack file (1-based line and column). */
export interface StackLocation {
  file: string;
  line: number;
  column?: number;
}

/** An ArgoCD Application or ApplicationSet at the top of the stack directory, as idpbuilder reads it. */
export interface StackApp {
  /** The YAML file (absolute). */
  file: string;
  kind: 'Application' | 'ApplicationSet';
  name: string;
  /** The directories its `cnoe://` URLs point at (absolute, existing directories). */
  cnoeDirs: { dir: string; location: StackLocation }[];
  /**
   * Helm values files its cnoe sources name in `helm.valueFiles` (absolute;
   * `$ref/...` resolved through the source with that `ref`). Only files that exist.
   */
  valueFiles?: { file: string; location: StackLocation }[];
}

/** Character offsets (UTF-16, as JavaScript strings index) into a file's text. */
export interface TextSpan {
  start: number;
  end: number;
}

/**
 * How `writePins` puts a digest into a reference's file (lib/stack/pin.ts):
 *  - `reference`: replace `span` (the whole `registry/repo[:tag][@digest]` text);
 *  - `tag`: replace the Helm `tag:` value at `span` with `TAG@DIGEST`;
 *  - `digest`: replace the kustomization `digest:` value at `span`;
 *  - `insert-digest`: insert `\n<indent>digest: DIGEST` at offset `at` (kustomization entry without one);
 *  - `none`: cannot be pinned in place (`reason` says why).
 */
export type ReferenceEdit =
  | { kind: 'reference'; span: TextSpan }
  | { kind: 'tag'; span: TextSpan; tag: string }
  | { kind: 'digest'; span: TextSpan }
  | { kind: 'insert-digest'; at: number; indent: string }
  | { kind: 'none'; reason: string };

/** Where a reference sits in the bytes of its file when it was scanned (what `writePins` checks and edits). */
export interface ReferenceSource {
  /** sha256 (hex) of the whole file as scanned: a file changed since is refused. */
  fileSha256: string;
  /** Offsets of `text`. */
  span: TextSpan;
  edit: ReferenceEdit;
}

/** A reference to an image of the stack's registry found in a Kubernetes/kustomize/Helm file. */
export interface ManifestReference {
  location: StackLocation;
  /** Exactly the text as written in the file (what `--pin --write` replaces). */
  text: string;
  /** Registry host as written (`gitea.cnoe.localtest.me:8443`). */
  registry: string;
  /** Repository path below the registry (`giteaadmin/hello`). */
  repository: string;
  tag?: string;
  digest?: string;
  /** Where it was found. */
  kind: 'manifest' | 'kustomization' | 'helm-values';
  /** Set by the scanner (lib/stack/references.ts); needed by `writePins`. */
  source?: ReferenceSource;
}

/** One buildable image of the stack. */
export interface StackImage {
  /** Image name below the owner (`hello`, `team/api`), checked against Gitea's rules. */
  name: string;
  /** Build context directory (absolute). */
  context: string;
  /** Dockerfile path (absolute). */
  dockerfile: string;
  target?: string;
  buildArgs: Record<string, string>;
  /**
   * Tags to push. Default (discovery): the tags the stack's manifests use
   * for this image, else `latest` (docs/stacks.md). `--tag` replaces them.
   */
  tags: string[];
  platform?: string;
  /** From an `ocistack.yaml` entry (with its location) or found by discovery. */
  origin: { kind: 'config'; location: StackLocation } | { kind: 'discovered' };
  /** Manifest references that name this image. */
  usedBy: ManifestReference[];
}

export interface StackWarning {
  message: string;
  location?: StackLocation;
}

/** What a stack directory holds. */
export interface StackModel {
  /** The stack directory (absolute). */
  root: string;
  apps: StackApp[];
  images: StackImage[];
  /** References to the stack's registry that no image of the stack builds. */
  unmatched: ManifestReference[];
  /** e.g. Dockerfiles nothing references, references with no Dockerfile. */
  warnings: StackWarning[];
}

/** Where the stack's images go: idpbuilder's Gitea registry. */
export interface GiteaTarget {
  /** `cnoe.localtest.me` (idpbuilder's --host). */
  host: string;
  /** `8443` (idpbuilder's --port). */
  port: number;
  /** idpbuilder's --use-path-routing. */
  pathRouting: boolean;
  /** `gitea.<host>:<port>`, or `<host>:<port>` with path routing. */
  registry: string;
  /** Always `giteaadmin` (Gitea's lowercase owner; the login user is giteaAdmin). */
  owner: string;
  /** Where host/port/path routing came from. */
  source: 'flags' | 'cluster' | 'defaults';
  /**
   * idpbuilder's --protocol: `http` makes the registry plain HTTP (no
   * certificate). Absent means `https`, idpbuilder's default.
   */
  protocol?: 'https' | 'http';
  /**
   * Why that source, for verbose output: e.g. `localbuild localdev`,
   * `kubectl is not installed`, `kubectl: The connection to the server
   * localhost:8080 was refused ...`.
   */
  sourceDetail?: string;
}

/** Everything needed to push to the stack's Gitea, and where each part came from (never the secret itself). */
export interface GiteaAccess {
  target: GiteaTarget;
  credentials?: Credentials;
  /** e.g. `--creds`, `OCISTACK_USERNAME/OCISTACK_PASSWORD`, `idpbuilder get secrets`, `kubectl secret gitea/gitea-credential`, `auth file ~/.config/ocistack/auth.json`, `none`. */
  credentialSource: string;
  /** Registry options for lib/engine and lib/registry (caFile / certDir / insecureRegistries for the Gitea host only, credentialsByHost). */
  registry: RegistryOptions;
  /** e.g. `--ca-file`, `kubectl secret ingress-nginx/idpbuilder-cert`, `cached ~/.config/ocistack/certs.d/...`, `--insecure`, `verification skipped`. */
  trustSource: string;
  /** One-line warnings to print (e.g. TLS verification skipped for the Gitea host). */
  warnings: string[];
  /**
   * The credential sources tried before `credentialSource` and why each gave
   * nothing (e.g. `idpbuilder get secrets: idpbuilder is not installed`), so
   * an error can say what was looked at. Never a secret.
   */
  credentialsTried?: string[];
}

/** The outcome for one image of a batch. */
export interface StackImageResult {
  image: StackImage;
  /** Full references pushed (empty for `stack build`). */
  references: string[];
  status: 'built' | 'pushed' | 'failed' | 'skipped';
  manifestDigest?: string;
  /** Compressed size of config + layers, bytes. */
  size?: number;
  durationMs: number;
  /** Steps answered from the build cache (0 until issue 11's cache). */
  cachedSteps: number;
  error?: Error;
}

export interface StackResult {
  model: StackModel;
  access?: GiteaAccess;
  images: StackImageResult[];
  /** True when every selected image succeeded. */
  ok: boolean;
}
