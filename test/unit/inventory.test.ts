import { applyEvent, exitCodeFromStatus, fromListEntry } from '../../src/docker/inventory';
import type { ObservedContainer } from '../../src/model/container';
import type Dockerode from 'dockerode';

const labels = {
  'dev.sessionctl.managed-by': 'sessionctl',
  'dev.sessionctl.session': 'alice',
  'dev.sessionctl.uid': 'u',
};
const event = (Action: string, attributes: Record<string, string> = {}, timeNano = 2e18) => ({
  Type: 'container',
  Action,
  timeNano,
  Actor: { ID: 'c1', Attributes: { name: 'sessionctl-alice', image: 'i', ...labels, ...attributes } },
});

describe('applyEvent', () => {
  it('follows a container through its life and names the session each time', () => {
    const containers = new Map<string, ObservedContainer>();
    expect(applyEvent(containers, event('create'))).toBe('alice');
    expect(containers.get('c1')).toMatchObject({ state: 'created', name: 'sessionctl-alice', labels });
    expect(containers.get('c1')!.labels).not.toHaveProperty('image');
    applyEvent(containers, event('start'));
    expect(containers.get('c1')).toMatchObject({ state: 'running', startedAt: 2e12 });
    applyEvent(containers, event('oom'));
    applyEvent(containers, event('die', { exitCode: '137' }, 3e18));
    expect(containers.get('c1')).toMatchObject({ state: 'exited', exitCode: 137, oomKilled: true, finishedAt: 3e12 });
    applyEvent(containers, event('health_status: unhealthy'));
    expect(containers.get('c1')!.health).toBe('unhealthy');
    expect(applyEvent(containers, event('destroy'))).toBe('alice');
    expect(containers.size).toBe(0);
  });

  it('never rolls a started container back on a late create event', () => {
    const containers = new Map<string, ObservedContainer>([
      ['c1', { id: 'c1', name: 'sessionctl-alice', labels, state: 'running' }],
    ]);
    applyEvent(containers, event('create'));
    expect(containers.get('c1')!.state).toBe('running');
  });

  it('ignores events of unknown containers (a relist covers them) and of other types', () => {
    const containers = new Map<string, ObservedContainer>();
    expect(applyEvent(containers, event('start'))).toBeUndefined();
    expect(applyEvent(containers, { ...event('create'), Type: 'network' })).toBeUndefined();
    expect(containers.size).toBe(0);
  });

  it('ignores actions it does not model', () => {
    const containers = new Map<string, ObservedContainer>([['c1', { id: 'c1', name: 'n', labels, state: 'running' }]]);
    expect(applyEvent(containers, event('exec_create: sh'))).toBeUndefined();
    expect(containers.get('c1')!.state).toBe('running');
  });
});

describe('list entries', () => {
  it('reads the exit code from the status text', () => {
    expect(exitCodeFromStatus('Exited (137) 5 seconds ago')).toBe(137);
    expect(exitCodeFromStatus('Up 3 minutes')).toBeUndefined();
  });

  it('maps a list entry', () => {
    const info = {
      Id: 'c1',
      Names: ['/sessionctl-alice'],
      Labels: labels,
      State: 'exited',
      Status: 'Exited (1) 2 seconds ago',
    } as unknown as Dockerode.ContainerInfo;
    expect(fromListEntry(info)).toEqual({ id: 'c1', name: 'sessionctl-alice', labels, state: 'exited', exitCode: 1 });
  });
});
