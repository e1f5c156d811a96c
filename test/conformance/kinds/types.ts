/** A kind of conformance vector: where its files are and how to run each vector. */
export interface ConformanceVector {
  /** Stable name, e.g. `args` or `line 12: he${PWD}`. */
  id: string;
  /** Throws an Error describing the mismatch. */
  run(): void;
}

export interface ConformanceKind {
  name: string;
  /** Folder (or file) relative to the conformance dir; missing means "not present". */
  folder: string;
  load(dir: string): ConformanceVector[];
}
