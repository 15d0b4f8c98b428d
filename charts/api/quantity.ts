/**
 * resource.Quantity arithmetic, just enough to compare two quantities
 * (k8s.io/apimachinery/pkg/api/resource: decimal SI suffixes, binary SI suffixes, exponents).
 */
import { QUANTITY_PATTERN, type Quantity } from './schema.js';

const SUFFIX: Record<string, number> = {
  '': 1,
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};
const QUANTITY = new RegExp(QUANTITY_PATTERN);

/**
 * The value of a quantity as a float (`'100m'` -> 0.1, `'128Mi'` -> 134217728, `2` -> 2).
 * Precision is that of a JS number, which is enough to order requests and limits.
 * @throws Error when the string is not a Kubernetes quantity.
 */
export function quantityValue(q: Quantity): number {
  if (typeof q === 'number') return q;
  if (!QUANTITY.test(q)) throw new Error(`not a Kubernetes quantity: ${JSON.stringify(q)}`);
  const m = /^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(.*)$/.exec(q)!;
  const number = Number(m[1]);
  const suffix = m[2] ?? '';
  if (suffix in SUFFIX) return number * SUFFIX[suffix]!;
  return number * 10 ** Number(suffix.slice(1)); // e/E exponent
}
