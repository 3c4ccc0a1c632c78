/**
 * Runs the test files in jest's usual order, except the ones that restart or freeze a dockerd
 * (fleet-host-loss stops and starts the third one): they go last. A SIGKILLed dockerd can leave a
 * container whose overlay mount stays busy, which Docker then cannot remove until the machine's
 * mounts are cleaned; the controller sets such a container aside (see docs/docker-failures.md), but
 * a later test file that counts managed containers would count it too.
 */
const Sequencer = require('@jest/test-sequencer').default;

const LAST = ['fleet-host-loss.test.ts', 'hung-daemon.test.ts', 'faults.test.ts'];

class DaemonFaultsLast extends Sequencer {
  async sort(tests) {
    const rank = (test) => LAST.findIndex((name) => test.path.endsWith(`/${name}`));
    const ordered = await super.sort(tests);
    return [
      ...ordered.filter((test) => rank(test) < 0),
      ...ordered.filter((test) => rank(test) >= 0).sort((a, b) => rank(a) - rank(b)),
    ];
  }
}

module.exports = DaemonFaultsLast;
