/** Layers: writing deterministic layer tarballs, and reading images' layers without extracting them. */
export { writeLayer, orderEntries, comparePaths, GZIP_OS_UNKNOWN, type WriteLayerOptions } from './write.js';
export { openImageFs, ImageFs, type ImageNode, type ImageNodeType } from './image-fs.js';
export { indexLayer, layerIndexPath, scanLayer, type IndexedEntry, type IndexedType, type LayerIndex } from './layer-index.js';
export { detectCompression, decompressFile, looksLikeTar, type Compression } from './decompress.js';
