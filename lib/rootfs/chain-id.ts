/**
 * ChainID as the OCI image spec defines it (config.md, "Layer ChainID"):
 *
 *   ChainID(L0)      = DiffID(L0)
 *   ChainID(L0..Ln)  = sha256(ChainID(L0..Ln-1) + " " + DiffID(Ln))
 *
 * It names the file system a stack of layers produces, independent of how
 * the layers were compressed, so it keys rootfs snapshots.
 */
import { OcistackError } from '../errors.js';
import { assertDigest, sha256 } from '../image/digest.js';
import type { Digest } from '../image/types.js';

/** ChainID of the whole stack `diffIds` (base first). At least one layer. */
export function chainId(diffIds: readonly Digest[]): Digest {
  const all = chainIds(diffIds);
  if (all.length === 0) {
    throw new OcistackError('a ChainID needs at least one layer', { code: 'ROOTFS_EMPTY_CHAIN', hint: 'an image without layers (FROM scratch) has no ChainID' });
  }
  return all[all.length - 1]!;
}

/** ChainIDs of every prefix: `[ChainID(L0), ChainID(L0..L1), ...]`. A later snapshot can start from the longest prefix that exists. */
export function chainIds(diffIds: readonly Digest[]): Digest[] {
  const out: Digest[] = [];
  for (const d of diffIds) {
    assertDigest(d, 'diff_id');
    out.push(out.length === 0 ? d : sha256(`${out[out.length - 1]} ${d}`));
  }
  return out;
}
