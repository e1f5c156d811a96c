/** Rootfs: materialising an image's layer chain into a directory, and cached snapshots of chains (for local RUN executors). */
export { chainId, chainIds } from './chain-id.js';
export { materializeChain, type MaterializeOptions, type MaterializeResult } from './materialize.js';
export { ensureSnapshot, findSnapshotPrefix, snapshotKey, snapshotsRoot, removeTree, type Snapshot, type SnapshotOptions } from './snapshot.js';
export { captureOverlayUpper, readXattrsTree, type CaptureOptions, type CaptureResult } from './capture.js';
export type { RootfsWarning, RootfsWarningCode } from './warnings.js';
