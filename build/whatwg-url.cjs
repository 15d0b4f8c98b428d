/**
 * Stand-in for `whatwg-url` in the bundle (build.ts). Its one user there, node-fetch 2 (through
 * client-node's KubeConfig), takes `require('url').URL` first and this package's URL only where
 * Node has none; Node >= 10 always has one, so this returns Node's WHATWG URL and the bundle
 * drops whatwg-url and its Unicode tables (tr46), a tenth of the kubeconfig client's load time.
 */
module.exports = { URL: globalThis.URL, URLSearchParams: globalThis.URLSearchParams };
