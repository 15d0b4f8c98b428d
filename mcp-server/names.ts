/**
 * Object names and request paths, checked as Kubernetes checks them (issue 9, item 2).
 *
 * - Names: every object name is a path segment (k8s.io/apimachinery/pkg/api/validation/path:
 *   `IsValidPathSegmentName` refuses `.`, `..`, and names containing `/` or `%`); most kinds also
 *   need a DNS-1123 subdomain, Namespaces a DNS-1123 label, Services a DNS-1035 label
 *   (k8s.io/apimachinery/pkg/util/validation, "Object Names and IDs" in the Kubernetes docs).
 * - Paths: `parseApiPath` reads the path of the URL about to be sent back into what it designates
 *   (group, version, namespace, resource, name, subresource), so the gateway can verify that the
 *   request goes exactly where the policy allowed, after `new URL()` normalisation.
 */

/** A client argument that is not valid; `field` names the argument (`name`, `namespace`, ...). */
export class InvalidArgumentError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`invalid ${field}: ${message}`);
    this.name = 'InvalidArgumentError';
  }
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

/** Which name rule a resource's object names follow. */
export type NameRule = 'path-segment' | 'dns-subdomain' | 'dns-label' | 'dns1035-label';

/**
 * The name rule of a resource (group '' is core). Namespaces: DNS-1123 label; Services:
 * DNS-1035 label; the built-in kinds below and custom resources: DNS-1123 subdomain (the
 * apiserver validates CR names so); RBAC objects and anything else: path segment only.
 */
export function nameRuleOf(group: string, resource: string): NameRule {
  if (group === '' && resource === 'namespaces') return 'dns-label';
  if (group === '' && resource === 'services') return 'dns1035-label';
  if (group === 'rbac.authorization.k8s.io') return 'path-segment';
  const subdomain: Record<string, string[]> = {
    '': [
      'pods',
      'configmaps',
      'secrets',
      'serviceaccounts',
      'persistentvolumeclaims',
      'persistentvolumes',
      'nodes',
      'endpoints',
      'replicationcontrollers',
      'resourcequotas',
      'limitranges',
      'events',
    ],
    apps: ['deployments', 'statefulsets', 'daemonsets', 'replicasets', 'controllerrevisions'],
    batch: ['jobs', 'cronjobs'],
    'networking.k8s.io': ['ingresses', 'networkpolicies', 'ingressclasses'],
    policy: ['poddisruptionbudgets'],
    autoscaling: ['horizontalpodautoscalers'],
    'coordination.k8s.io': ['leases'],
    'storage.k8s.io': ['storageclasses'],
  };
  if (subdomain[group]?.includes(resource)) return 'dns-subdomain';
  // Custom resources (groups with a dot that are not *.k8s.io built-ins) are DNS subdomains.
  if (group.includes('.') && !group.endsWith('.k8s.io')) return 'dns-subdomain';
  return 'path-segment';
}

/**
 * Checks an object name for `resource` in `group`.
 * @throws InvalidArgumentError naming `field` when the name is not one Kubernetes accepts.
 */
export function checkName(name: string, group: string, resource: string, field = 'name'): void {
  if (typeof name !== 'string' || name.length === 0) throw new InvalidArgumentError(field, 'must not be empty');
  if (name === '.' || name === '..')
    throw new InvalidArgumentError(field, `"${name}" is not a valid object name (Kubernetes refuses "." and "..")`);
  if (/[/%]/.test(name)) throw new InvalidArgumentError(field, `${JSON.stringify(name)} may not contain "/" or "%"`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name))
    throw new InvalidArgumentError(field, `${JSON.stringify(name)} contains control characters`);
  if (name.length > 253) throw new InvalidArgumentError(field, `is ${name.length} characters long; at most 253`);
  const rule = nameRuleOf(group, resource);
  if (rule === 'dns-subdomain' && !DNS1123_SUBDOMAIN.test(name)) {
    throw new InvalidArgumentError(
      field,
      `${JSON.stringify(name)} is not a DNS-1123 subdomain (lower-case letters, digits, '-' and '.', starting and ending with a letter or digit), as ${resource} names must be`,
    );
  }
  if (rule === 'dns-label' && (name.length > 63 || !DNS1123_LABEL.test(name))) {
    throw new InvalidArgumentError(
      field,
      `${JSON.stringify(name)} is not a DNS-1123 label (at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit), as ${resource} names must be`,
    );
  }
  if (rule === 'dns1035-label' && (name.length > 63 || !DNS1035_LABEL.test(name))) {
    throw new InvalidArgumentError(
      field,
      `${JSON.stringify(name)} is not a DNS-1035 label (at most 63 lower-case letters, digits and '-', starting with a letter), as ${resource} names must be`,
    );
  }
}

/**
 * Checks a namespace name (a DNS-1123 label).
 * @throws InvalidArgumentError naming `field`.
 */
export function checkNamespace(ns: string, field = 'namespace'): void {
  checkName(ns, '', 'namespaces', field);
}

/** What a request path designates. */
export type ApiPath =
  | {
      kind: 'resource';
      group: string;
      version: string;
      namespace?: string;
      resource: string;
      name?: string;
      subresource?: string;
      /** Below a `proxy` subresource: the rest of the path (`logs/kubelet.log`, `logs/`). */
      subpath?: string;
    }
  | { kind: 'non-resource'; path: string };

/** Non-resource paths the gateway may send (discovery, version, health). */
export const NON_RESOURCE_PATHS = new Set(['/api', '/apis', '/version', '/healthz', '/readyz', '/livez']);

/**
 * The OpenAPI v3 index and one group-version's document (`/openapi/v3`, `/openapi/v3/api/v1`,
 * `/openapi/v3/apis/GROUP/VERSION`; Kubernetes docs, "OpenAPI V3"): non-resource reads.
 */
export const OPENAPI_V3_PATH = /^\/openapi\/v3(\/api\/v[0-9a-z]+|\/apis\/[a-z0-9.-]+\/v[0-9a-z]+)?$/;

/**
 * Parses the path of a URL about to be sent (`URL.pathname`, percent-encoded) into what the
 * apiserver will serve, as its request-info resolver does
 * (k8s.io/apiserver/pkg/endpoints/request/requestinfo.go): `/api/v1[/namespaces/NS]/RES[/NAME[/SUB]]`
 * and `/apis/GROUP/VERSION/...`. A namespace object itself is `/api/v1/namespaces/NAME[/SUB]`.
 * Returns undefined for a path that is neither (or has empty, `.`, `..` or undecodable segments).
 */
export function parseApiPath(pathname: string): ApiPath | undefined {
  if (NON_RESOURCE_PATHS.has(pathname) || OPENAPI_V3_PATH.test(pathname))
    return { kind: 'non-resource', path: pathname };
  const raw = pathname.split('/');
  if (raw[0] !== '') return undefined;
  const segs: string[] = [];
  // A trailing slash below `proxy` is part of the proxied path (the kubelet's `logs/` listing).
  const trailing = raw.length > 2 && raw[raw.length - 1] === '' && raw[raw.length - 2] !== '';
  for (const r of trailing ? raw.slice(1, -1) : raw.slice(1)) {
    let s: string;
    try {
      s = decodeURIComponent(r);
    } catch {
      return undefined;
    }
    if (s === '' || s === '.' || s === '..' || s.includes('/')) return undefined;
    segs.push(s);
  }
  let group: string;
  let version: string;
  let rest: string[];
  if (segs[0] === 'api' && segs.length >= 2) {
    group = '';
    version = segs[1]!;
    rest = segs.slice(2);
  } else if (segs[0] === 'apis' && segs.length >= 3) {
    group = segs[1]!;
    version = segs[2]!;
    rest = segs.slice(3);
  } else return undefined;
  if (rest.length === 0) return undefined;
  let namespace: string | undefined;
  // /namespaces/NS/RES... is namespaced; /namespaces and /namespaces/NAME[/SUB] address Namespace objects.
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    namespace = rest[1]!;
    rest = rest.slice(2);
    // The namespace's own subresources (/namespaces/NS/status, /finalize) address the Namespace.
    if (group === '' && rest.length === 1 && (rest[0] === 'status' || rest[0] === 'finalize')) {
      return { kind: 'resource', group, version, resource: 'namespaces', name: namespace, subresource: rest[0] };
    }
  }
  // Anything below `proxy` is proxied as is: keep it whole, so the gateway compares all of it.
  const subpath =
    rest[2] === 'proxy' && (rest.length > 3 || trailing)
      ? [...rest.slice(3), ...(trailing ? [''] : [])].join('/')
      : undefined;
  if (trailing && subpath === undefined) return undefined;
  if (rest.length > 3 && subpath === undefined) return undefined;
  return {
    kind: 'resource',
    group,
    version,
    ...(namespace !== undefined ? { namespace } : {}),
    resource: rest[0]!,
    ...(rest[1] !== undefined ? { name: rest[1] } : {}),
    ...(rest[2] !== undefined ? { subresource: rest[2] } : {}),
    ...(subpath !== undefined ? { subpath } : {}),
  };
}
