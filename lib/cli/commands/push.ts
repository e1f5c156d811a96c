/**
 * `ocistack push SOURCE DEST`: push an image from an OCI layout or a
 * docker-archive (or another registry) to a registry. DEST may omit
 * `docker://`.
 */
import type { CliCommand } from '../types.js';
import { copyFlagsHelp, runCopy } from './copy.js';

const help = `Usage: ocistack push [OPTIONS] SOURCE [DEST]

Push an image to a registry. SOURCE is an image built with "ocistack build -t REF"
(REF or local:REF), oci:DIR[:TAG], docker-archive:FILE[:REF] or docker://REF;
DEST is a registry reference (docker:// optional), by default SOURCE's own name:
  ocistack build -t gitea.cnoe.localtest.me:8443/giteaadmin/app:1 .
  ocistack push gitea.cnoe.localtest.me:8443/giteaadmin/app:1
  ocistack push oci:./out:app gitea.cnoe.localtest.me:8443/giteaadmin/app:1

The manifest digest (as the registry serves it) is printed on stdout.

Options:
${copyFlagsHelp}

Exit status: 0 pushed, 1 failed, 2 usage error.
`;

export const command: CliCommand = {
  name: 'push',
  summary: 'Push an image (built here, or from an OCI layout or docker-archive) to a registry',
  help,
  run: (argv, io) => runCopy(argv, io, 'push', 'docker'),
};
