/**
 * The operator's Helm chart (issue 20), generated from the same {@link OperatorChart} construct
 * that writes `dist/manifests/operator.k8s.yaml`: one source. The construct is rendered with
 * sentinel values where a Helm value goes, and each sentinel is replaced by its template
 * expression, so `helm template` with the default values prints exactly the manifests' objects
 * (the Namespace aside: Helm installs into `--namespace`, `--create-namespace` makes it). The CRD
 * goes to `crds/`, as Helm's convention for CRDs says: installed with the chart, never upgraded or
 * deleted by it (https://helm.sh/docs/chart_best_practices/custom_resource_definitions/).
 *
 * Values: `image.repository`, `image.tag`, `image.pullPolicy`, `gatewayImage` (the gateway and
 * bridge of MCPServer pods; default the controller's image), `watchNamespace` (default all),
 * `replicas`, `leaderElection`, `logLevel`, `resources`.
 */
import { App, Yaml } from 'cdk8s';
import { stringify } from 'yaml';
import { CONTROLLER_RESOURCES, DEFAULT_CONTROLLER_IMAGE, OperatorChart } from './operator.js';

/** The chart's name and version (the kubemcp package's). */
export const HELM_CHART_NAME = 'kubemcp';
export const HELM_CHART_VERSION = '0.1.0';

const S = {
  image: '@@IMAGE@@',
  bridgeImage: '@@GATEWAY_IMAGE@@',
  namespace: '@@NAMESPACE@@',
  logLevel: '@@LOG_LEVEL@@',
  watch: '@@WATCH_NAMESPACE@@',
} as const;

/** `repository:tag` split at the last colon after the last slash. */
function splitImage(image: string): { repository: string; tag: string } {
  const i = image.lastIndexOf(':');
  return i > image.lastIndexOf('/')
    ? { repository: image.slice(0, i), tag: image.slice(i + 1) }
    : { repository: image, tag: 'latest' };
}

/** The default values (values.yaml): what makes `helm template` equal the synthesized manifests. */
export function helmValues(): Record<string, unknown> {
  return {
    image: { ...splitImage(DEFAULT_CONTROLLER_IMAGE), pullPolicy: 'IfNotPresent' },
    gatewayImage: '',
    watchNamespace: '',
    replicas: 1,
    leaderElection: true,
    logLevel: 'info',
    resources: structuredClone(CONTROLLER_RESOURCES),
  };
}

/**
 * The chart's files by path relative to the chart directory: `Chart.yaml`, `values.yaml`,
 * `crds/mcpservers.yaml`, `templates/operator.yaml`.
 * @throws Error when a sentinel was not found in the rendered construct (the construct changed).
 */
export function helmChartFiles(): Record<string, string> {
  const objs = new OperatorChart(new App({ outdir: '/dev/null' }), 'operator', {
    image: S.image,
    bridgeImage: S.bridgeImage,
    operatorNamespace: S.namespace,
    logLevel: S.logLevel,
    watchNamespace: S.watch,
    includeNamespace: false,
  }).toJson() as Array<{ kind: string }>;
  const crd = objs.filter((o) => o.kind === 'CustomResourceDefinition');
  const rest = objs.filter((o) => o.kind !== 'CustomResourceDefinition');
  let text = rest.map((o) => Yaml.stringify(o)).join('---\n');
  const replace = (from: RegExp | string, to: string | ((...m: string[]) => string)) => {
    const before = text;
    text = text.replace(from, to as never); // a string or a replacer function alike
    if (text === before) throw new Error(`helm chart: ${String(from)} not found in the rendered operator`);
  };
  // Whole argument lines first (their presence depends on values), then the values in place.
  replace(/^(\s*)- --log-level=@@LOG_LEVEL@@$/m, (_m, ind) => `${ind}- --log-level={{ .Values.logLevel }}`);
  replace(
    /^(\s*)- --namespace=@@WATCH_NAMESPACE@@\n/m,
    (_m, ind) => `${ind}{{- with .Values.watchNamespace }}\n${ind}- --namespace={{ . }}\n${ind}{{- end }}\n`,
  );
  replace(
    /^(\s*)- --leader-elect$/m,
    (_m, ind) => `${ind}- {{ if .Values.leaderElection }}--leader-elect{{ else }}--no-leader-elect{{ end }}`,
  );
  replace(
    /--bridge-image=@@GATEWAY_IMAGE@@/,
    '--bridge-image={{ .Values.gatewayImage | default (printf "%s:%s" .Values.image.repository .Values.image.tag) }}',
  );
  replace(/@@IMAGE@@/g, '{{ .Values.image.repository }}:{{ .Values.image.tag }}');
  replace(/@@NAMESPACE@@/g, '{{ .Release.Namespace }}');
  replace(
    /^(\s*)imagePullPolicy: IfNotPresent$/m,
    (_m, ind) => `${ind}imagePullPolicy: {{ .Values.image.pullPolicy }}`,
  );
  replace(/^(\s*)replicas: 1$/m, (_m, ind) => `${ind}replicas: {{ .Values.replicas }}`);
  // The controller container's resources block (the only `resources:` key with requests/limits).
  replace(
    /^( *)resources:\n(?:\1 {2}(?:limits|requests):\n(?:\1 {4}.*\n)+)+/m,
    (_m, ind) => `${ind}resources:\n${ind}  {{- toYaml .Values.resources | nindent ${ind.length + 2} }}\n`,
  );
  if (text.includes('@@')) throw new Error(`helm chart: a sentinel is left: ${/@@[A-Z_]+@@/.exec(text)?.[0]}`);
  return {
    'Chart.yaml': stringify({
      apiVersion: 'v2',
      name: HELM_CHART_NAME,
      description: 'kubemcp: the MCPServer operator (CRD, controller, RBAC); generated from charts/operator.ts',
      type: 'application',
      version: HELM_CHART_VERSION,
      appVersion: splitImage(DEFAULT_CONTROLLER_IMAGE).tag,
      kubeVersion: '>=1.30.0-0',
    }),
    'values.yaml': `# Generated from charts/operator.ts (npm run synth); see charts/helm.ts for what each value sets.\n${stringify(helmValues())}`,
    'crds/mcpservers.yaml': crd.map((o) => Yaml.stringify(o)).join('---\n'),
    'templates/operator.yaml': `# Generated from charts/operator.ts (npm run synth): the OperatorChart construct with Helm values.\n${text}`,
  };
}
