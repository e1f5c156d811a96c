/**
 * What a materialisation could not reproduce (owners without root, device
 * nodes without root, xattrs the file system or user may not set, entry
 * types we do not create). Each kind is reported once, as a progress
 * `warning` event, and counted; the caller gets the list with the result.
 */
import type { ProgressListener } from '../progress/events.js';

export type RootfsWarningCode = 'ROOTFS_OWNER_SKIPPED' | 'ROOTFS_DEVICE_SKIPPED' | 'ROOTFS_XATTR_SKIPPED' | 'ROOTFS_ENTRY_SKIPPED';

export interface RootfsWarning {
  code: RootfsWarningCode;
  /** The first occurrence, in words. */
  message: string;
  /** Image path of the first entry concerned (`/dev/null`). */
  path: string;
  /** How many entries it concerned. */
  count: number;
}

export class RootfsWarnings {
  private readonly byCode = new Map<RootfsWarningCode, RootfsWarning>();

  constructor(private readonly onProgress?: ProgressListener) {}

  add(code: RootfsWarningCode, path: string, message: string): void {
    const seen = this.byCode.get(code);
    if (seen) {
      seen.count++;
      return;
    }
    this.byCode.set(code, { code, message, path, count: 1 });
    this.onProgress?.({ type: 'warning', message });
  }

  list(): RootfsWarning[] {
    return [...this.byCode.values()].map((w) => ({ ...w }));
  }
}
