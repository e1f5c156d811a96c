/**
 * EXPOSE port specs -> `port/proto` strings, as BuildKit's parsePort does
 * (ranges expanded, protocol lower-cased, default tcp).
 */

/** `8080`, `53/udp`, `8000-8002/tcp` -> `["8080/tcp"]`, ...; throws Error on a bad spec. */
export function parseExposePort(raw: string): string[] {
  const parts = raw.split(':');
  let hostPort = '';
  let containerPort: string;
  if (parts.length === 1) containerPort = parts[0]!;
  else if (parts.length === 2) [hostPort, containerPort] = [parts[0]!, parts[1]!];
  else {
    // an IP before the host port is accepted and ignored, like BuildKit
    const n = parts.length;
    hostPort = parts[n - 2]!;
    containerPort = parts[n - 1]!;
  }
  const slash = containerPort.indexOf('/');
  const port = slash < 0 ? containerPort : containerPort.slice(0, slash);
  const protoRaw = slash < 0 ? '' : containerPort.slice(slash + 1);
  if (port === '') throw new Error(`invalid port: ${JSON.stringify(raw)}: no port specified`);
  const proto = protoRaw === '' ? 'tcp' : protoRaw;
  if (!['tcp', 'udp', 'sctp'].includes(proto.toLowerCase())) throw new Error(`invalid port: ${JSON.stringify(raw)}: invalid proto: ${protoRaw}`);
  const [start, end] = portRange(port, 'containerPort');
  if (hostPort !== '') {
    const [hs, he] = portRange(hostPort, 'hostPort');
    if (end - start !== he - hs && end !== start) throw new Error(`invalid ranges specified for container and host Ports: ${port} and ${hostPort}`);
  }
  const out: string[] = [];
  for (let p = start; p <= end; p++) out.push(`${p}/${proto.toLowerCase()}`);
  return out;
}

function portRange(spec: string, what: string): [number, number] {
  const dash = spec.indexOf('-');
  const start = dash < 0 ? spec : spec.slice(0, dash);
  const end = dash < 0 ? undefined : spec.slice(dash + 1);
  const s = portNumber(start, what, spec);
  if (end === undefined || end === start) return [s, s];
  const e = portNumber(end, what, spec);
  if (e < s) throw new Error(`invalid ${what}: ${spec}`);
  return [s, e];
}

function portNumber(s: string, what: string, spec: string): number {
  if (!/^[+-]?[0-9]+$/.test(s) || Number(s) < 0 || Number(s) > 65535) throw new Error(`invalid ${what}: ${spec}`);
  return Number(s);
}
