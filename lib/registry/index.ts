/**
 * Registry client: references, credentials, TLS per registry, pull and push.
 */
export * from './types.js';
export { parseReference, makeReference, isGiteaLike, hostnameOf, apiHost, withTagOrDigest, DOCKER_HUB } from './reference.js';
export type { ImageReference } from './reference.js';
export { resolveCredentials, storeCredentials, eraseCredentials, authFilePaths, dockerConfigPath, loginFilePath } from './credentials.js';
export type { ResolvedCredentials, AuthFile } from './credentials.js';
export { tlsPolicyFor, defaultCertDirs } from './tls.js';
export type { TlsPolicy } from './tls.js';
export { RegistrySession, RegistryClient } from './client.js';
export { pullImage, pullAll } from './pull.js';
export type { PullImageOptions, PullImageResult } from './pull.js';
export { pushImage } from './push.js';
export type { PushImageOptions, PushImageResult } from './push.js';
export { DEFAULT_CHUNK_SIZE, MIN_CHUNK_SIZE } from './blob-push.js';
export { selectManifest } from './platform.js';
export { checkLogin } from './login.js';
export { copyImage, parseLocation, formatLocation } from './copy.js';
export type { ImageLocation, CopyImageOptions, CopyImageResult } from './copy.js';
