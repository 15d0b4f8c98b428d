/**
 * exec-pod (issue 19): a command in a container through the pods/exec subresource, as
 * `kubectl exec POD -c CONTAINER -- ARGV...` does without stdin or a TTY: the WebSocket v5
 * channel protocol of kubectl 1.30+ (KEP-4006; KubeGateway.exec), stdout and stderr apart, the
 * exit code from the error channel's Status, a timeout and a byte cap.
 *
 * Its effect is `exec`: hidden in read-only mode and with `--disable-destructive` unless
 * `--allow-exec` (Policy.toolEnabled), and the gateway refuses the `exec` subresource under the
 * same rules whoever asks (Policy.checkRequest). Calls are audited with their arguments, the argv
 * included (registry.ts). The output is untrusted: the text answer fences it (fence.ts);
 * structuredContent keeps it raw. Secret masking cannot reach what a command prints (it can read
 * the Secrets mounted in its container), one more reason exec counts as a write and more.
 */
import { z } from 'zod';
import type { Pod } from '../kube.js';
import { InvalidArgumentError } from '../names.js';
import { fence } from '../fence.js';
import { budgetText } from '../format.js';
import { contextArg, defineTool, type AnyToolDef } from './registry.js';
import { nsFor } from './common.js';

/** Annotation naming the container kubectl exec, logs and attach use by default (kubectl 1.21+, k8s.io/kubectl/pkg/cmd/util/podcmd). */
export const DEFAULT_CONTAINER_ANNOTATION = 'kubectl.kubernetes.io/default-container';

/** Default and most seconds a command may run. */
export const EXEC_TIMEOUT_S = { default: 30, max: 300 } as const;
/** Default and most bytes of stdout and stderr together. */
export const EXEC_MAX_BYTES = { default: 16_384, max: 1_048_576 } as const;

/** A pod with the container lists exec may address. */
type ExecPod = Pod & {
  spec?: { initContainers?: Array<{ name: string }>; ephemeralContainers?: Array<{ name: string }> };
};

/**
 * The container an exec runs in, as kubectl picks it (k8s.io/kubectl/pkg/cmd/util/podcmd
 * FindOrDefaultContainerByName): the one named, among the pod's containers, init containers
 * (running sidecars) and ephemeral containers; else the one the
 * {@link DEFAULT_CONTAINER_ANNOTATION} names when it exists; else the first container.
 * @throws InvalidArgumentError naming `container` when the pod has no container of that name
 *   (the message lists them), or `name` when the pod has no containers.
 */
export function execContainer(pod: ExecPod, container?: string): string {
  const names = (pod.spec?.containers ?? []).map((c) => c.name);
  const all = [
    ...names,
    ...(pod.spec?.initContainers ?? []).map((c) => c.name),
    ...(pod.spec?.ephemeralContainers ?? []).map((c) => c.name),
  ];
  const podName = pod.metadata?.name ?? '';
  if (container !== undefined) {
    if (!all.includes(container))
      throw new InvalidArgumentError(
        'container',
        `pod ${podName} has no container ${container}; containers: ${all.join(', ') || 'none'}`,
      );
    return container;
  }
  const annotated = pod.metadata?.annotations?.[DEFAULT_CONTAINER_ANNOTATION];
  if (annotated && names.includes(annotated)) return annotated;
  if (!names[0]) throw new InvalidArgumentError('name', `pod ${podName} has no containers`);
  return names[0];
}

/** The tools of this module, in listing order. */
export function execTools(): AnyToolDef[] {
  return [
    defineTool({
      name: 'exec-pod',
      title: 'Run a command in a container',
      description:
        'Run an argv in a pod container (no shell unless it names one, e.g. ["sh","-c","..."]; no stdin/TTY): stdout, stderr, exit code. Output is fenced untrusted data.',
      effect: 'exec',
      input: {
        name: z.string().min(1).describe('pod name'),
        namespace: z.string().optional(),
        container: z.string().optional().describe('default: the annotated default, else the first'),
        command: z.array(z.string()).min(1).describe('argv'),
        timeoutSeconds: z
          .number()
          .int()
          .min(1)
          .max(EXEC_TIMEOUT_S.max)
          .optional()
          .describe(`default ${EXEC_TIMEOUT_S.default}`),
        maxBytes: z
          .number()
          .int()
          .min(256)
          .max(EXEC_MAX_BYTES.max)
          .optional()
          .describe(`stdout+stderr cap (default ${EXEC_MAX_BYTES.default})`),
        context: contextArg,
      },
      output: {
        namespace: z.string(),
        pod: z.string(),
        container: z.string(),
        stdout: z.string(),
        stderr: z.string(),
        exitCode: z.number().int().nullable(),
        truncated: z.boolean(),
        timedOut: z.boolean(),
        error: z.string().optional(),
      },
      run: async (a, ctx) => {
        const api = await ctx.kube.resolve('pods', 'v1', a.context);
        const namespace = nsFor(ctx, api, a.namespace, a.context)!;
        const ref = { context: a.context, api, namespace, name: a.name };
        const pod = await ctx.kube.get<ExecPod>(ref);
        const container = execContainer(pod, a.container);
        const timeoutSeconds = a.timeoutSeconds ?? EXEC_TIMEOUT_S.default;
        const maxBytes = a.maxBytes ?? EXEC_MAX_BYTES.default;
        const where = `pod ${namespace}/${a.name} container ${container}`;
        const target = `pods/${namespace}/${a.name}/${container}`;
        const base = { namespace, pod: a.name, container };
        const argvJson = JSON.stringify(a.command);
        const argv = argvJson.length > 300 ? `${argvJson.slice(0, 300)}...` : argvJson;
        // A command can change anything the container can reach: the user confirms it first when
        // the client supports elicitation; a declined or cancelled confirmation runs nothing.
        const answer = await ctx.confirm?.(`Run ${argvJson.slice(0, 2000)} in ${where}?`);
        if (answer === 'decline' || answer === 'cancel') {
          const why = `not run: the user ${answer === 'decline' ? 'declined' : 'cancelled'} the confirmation; nothing was run`;
          return {
            text: `exec ${argv} in ${where}: ${why}.`,
            structured: {
              ...base,
              stdout: '',
              stderr: '',
              exitCode: null,
              truncated: false,
              timedOut: false,
              error: why,
            },
            target,
          };
        }
        const r = await ctx.kube.exec(ref, {
          container,
          command: a.command,
          timeoutMs: timeoutSeconds * 1000,
          maxBytes,
        });
        const outcome = r.timedOut
          ? `timed out after ${timeoutSeconds} s (stream closed; the command may still run)`
          : r.truncated
            ? `output cut at ${maxBytes} bytes (stream closed; the command may still run): raise maxBytes or narrow the output`
            : r.exitCode !== null
              ? `exit code ${r.exitCode}`
              : `the command did not complete: ${r.error ?? 'no exit status'}`;
        // The two streams share the budget (stderr, usually short, keeps up to a quarter); the
        // room left after the header and fences is measured, and shrunk while flags overflow it.
        const render = (room: number) => {
          const err0 = budgetText(r.stderr, Math.min(r.stderr.length, Math.floor(room / 4)));
          const out = budgetText(r.stdout, room - err0.text.length);
          const err = budgetText(r.stderr, room - out.text.length);
          const cutNote = (part: { text: string; cut: boolean }, full: string) =>
            part.cut ? ` (first ${part.text.length} of ${full.length} characters, within the response budget)` : '';
          return (
            `exec ${argv} in ${where}: ${outcome}\n` +
            `stdout${cutNote(out, r.stdout)}:\n${fence(out.text, `stdout of ${where}`).text}\n` +
            `stderr${cutNote(err, r.stderr)}:\n${fence(err.text, `stderr of ${where}`).text}`
          );
        };
        let room = Math.max(0, ctx.budget - render(0).length - 120);
        let text = render(room);
        for (let i = 0; i < 4 && text.length > ctx.budget && room > 0; i++) {
          room = Math.max(0, room - (text.length - ctx.budget));
          text = render(room);
        }
        return {
          text,
          structured: {
            ...base,
            stdout: r.stdout,
            stderr: r.stderr,
            exitCode: r.exitCode,
            truncated: r.truncated,
            timedOut: r.timedOut,
            ...(r.error !== undefined ? { error: r.error } : {}),
          },
          target,
        };
      },
    }),
  ];
}
