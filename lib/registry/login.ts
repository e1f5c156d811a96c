/**
 * Checking credentials against a registry before `ocistack login` stores them.
 */
import { RegistrySession, responseError } from './client.js';
import type { Credentials, RegistryOptions } from './types.js';

/**
 * Authenticate to `registry` with `credentials` (GET /v2/, answering its
 * challenge). Throws an OcistackError when the registry refuses them.
 */
export async function checkLogin(registry: string, credentials: Credentials, opts: RegistryOptions = {}): Promise<void> {
  const session = new RegistrySession({ ...opts, credentials, credentialsFor: [registry] });
  try {
    const client = session.client(registry);
    const res = await client.request({ method: 'GET', url: '/v2/', scopes: [] });
    if (res.status !== 200) throw await responseError(registry, res, `login to ${registry} failed`);
    await res.arrayBuffer().catch(() => undefined);
  } finally {
    session.close();
  }
}
