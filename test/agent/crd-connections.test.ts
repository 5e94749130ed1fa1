import { readAgentConfig } from '../../agent/agent-config';
import { crdClientConnected } from '../../agent/crd-connections';
import { TEST_FLEET_TOKEN } from '../support/fixtures';
import { CRD_ROUTE, CRD_STARTED, crdConnected, crdDisconnected } from '../support/crd-host-log';

describe("the CRD host's log says whether a participant is connected", () => {
  it.each([
    ['nothing logged yet', [], false],
    ['the host started, nobody came', [CRD_STARTED], false],
    ['a client connected', [CRD_STARTED, crdConnected('ada'), CRD_ROUTE], true],
    ['the client left', [CRD_STARTED, crdConnected('ada'), CRD_ROUTE, crdDisconnected('ada')], false],
    ['one of two clients left', [CRD_STARTED, crdConnected('ada'), crdConnected('bo'), crdDisconnected('ada')], true],
    ['the host restarted after a client (a crash logs no disconnect)', [CRD_STARTED, crdConnected('ada'), CRD_STARTED], false],
    ['an access denied is no connection', [CRD_STARTED, 'Access denied for client: eve@example.com/chromoting_ftl_1'], false],
  ])('%s', (_case, lines, expected) => {
    expect(crdClientConnected(lines)).toBe(expected);
  });
});

describe('choosing the in-use probe', () => {
  const base = { LABLINK_ALLOCATOR_URL: 'http://127.0.0.1:1', LABLINK_FLEET_TOKEN: TEST_FLEET_TOKEN, LABLINK_VM_NAME: 'probe-vm-1' };
  it('refuses an unknown probe, and both kinds at once, saying which keys', () => {
    expect(() => readAgentConfig({ ...base, LABLINK_IN_USE_PROBE: 'crd-log' })).toThrow(
      'LABLINK_IN_USE_PROBE must be "crd-journal" when set.',
    );
    expect(() => readAgentConfig({ ...base, LABLINK_IN_USE_PROBE: 'crd-journal', LABLINK_IN_USE_PROCESS: 'python' })).toThrow(
      'Set LABLINK_IN_USE_PROBE or LABLINK_IN_USE_PROCESS, not both.',
    );
  });
  it('reports nothing without either, a process by name with LABLINK_IN_USE_PROCESS', () => {
    expect(readAgentConfig(base).health.inUseProbe).toBeUndefined();
    expect(readAgentConfig({ ...base, LABLINK_IN_USE_PROCESS: 'python' }).health.inUseProbe).toEqual({ kind: 'process', name: 'python' });
  });
});
