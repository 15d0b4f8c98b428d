/**
 * The default response budget of `kubemcp serve`, in characters of tool text (format.ts). A module
 * of its own so that the `serve` flags (command.ts) do not load format.ts and with it `yaml` at
 * process start (docs/serve.md, "Speed and memory").
 */
export const DEFAULT_BUDGET = 24_000;
