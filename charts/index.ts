/**
 * kubemcp's public API for cdk8s apps: the MCPServer schema and types, validation, the CRD, the
 * constructs (MCPServerWorkload, MCPServerChart, OperatorChart) and offline rendering.
 * `import { MCPServerWorkload, OperatorChart } from 'kubemcp'`.
 */
export * from './api/schema.js';
export * from './api/validate.js';
export { mcpServerCrd, mcpServerOpenAPISchema, CRD_NAME } from './api/crd.js';
export * from './mcpserver.js';
export * from './operator.js';
export { renderMCPServer, toYaml, type KubeObject } from './render.js';
export {
  CrdMcpServer,
  type CrdMcpServerProps,
  type McpServerSpec as CrdMcpServerSpec,
} from '../imports/mcpserver-mcp.example.com.js';
