/**
 * The cdk8s app behind `cdk8s synth` (cdk8s.yaml): writes to dist/manifests/
 * - operator.k8s.yaml: the MCPServer CRD, namespace mcp-system, RBAC and the controller Deployment;
 * - one <sample>.k8s.yaml per seed sample: the children an MCPServer renders into (GitOps
 *   without the operator; `kubemcp render -f` prints the same bytes).
 */
import { App } from 'cdk8s';
import { MCPServerChart } from './charts/mcpserver.js';
import { OperatorChart } from './charts/operator.js';
import { loadSamples } from './charts/samples.js';

const app = new App();
new OperatorChart(app, 'operator');
for (const sample of loadSamples()) new MCPServerChart(app, sample.id, { mcpServer: sample.manifest });
app.synth();
