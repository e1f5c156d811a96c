/** Rootfs: materialising an image's layer chain into a directory, and cached snapshots of chains (for local RUN executors). */
export { chainId, chainIds } from './chain-id.js';
export { materializeChain, type MaterializeOptions, type MaterializeResult } from './materialize.js';
export { ensureSnapshot, findSnapshotPrefix, snapshotKey, snapshotsRoot, removeTree, type Snapshot, type SnapshotOptions } from './snapshot.js';
export { ensureLayerSnapshots, ensureRootfsLowers, layerSnapshotsRoot, type LayerSnapshot, type LayerSnapshots, type RootfsLowers, type RootfsLowersOptions } from './layer-snapshots.js';
export { LayeredView, type RootfsView, type ViewEntry, type ViewLayer } from './layer-view.js';
export { captureOverlayUpper, readXattrsTree, type CaptureOptions, type CaptureResult } from './capture.js';
export type { RootfsWarning, RootfsWarningCode } from './warnings.js';
