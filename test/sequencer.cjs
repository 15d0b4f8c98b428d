/**
 * Jest's test order (@jest/test-sequencer: failed first, then slowest first, from its cache), with
 * one rule on top: the fault tests that restart a cluster component (`test/faults/*restart*`)
 * run after every other test of the run. After a kube-apiserver restart the cluster's own
 * controllers can lag (a CI run saw the ServiceAccount controller not create a namespace's
 * `default` ServiceAccount within 60 s), so the suites that restart nothing — the Helm chart test
 * among them — must not depend on the order a previous run's timings gave. (CommonJS: jest loads
 * the sequencer with require().)
 */
const Sequencer = require('@jest/test-sequencer').default;

const restarts = (p) => /[\\/]test[\\/]faults[\\/][^\\/]*restart[^\\/]*\.test\.ts$/.test(p);

class RestartsLastSequencer extends Sequencer {
  async sort(tests) {
    const ordered = await super.sort(tests);
    return [...ordered.filter((t) => !restarts(t.path)), ...ordered.filter((t) => restarts(t.path))];
  }
}

module.exports = RestartsLastSequencer;
