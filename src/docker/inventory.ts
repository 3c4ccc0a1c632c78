/**
 * An informer-style inventory of one host's managed containers: one list, then kept current
 * from the Docker event stream, resumed with `since` after a reconnect and re-listed after any
 * gap. Reconcile reads this, never the daemon, so steady state costs no API calls.
 */
import type Dockerode from 'dockerode';
import type { Logger } from 'pino';
import { backoffDelay, sleep } from '../runtime/backoff';
import type { Metrics } from '../metrics/registry';
import type { DockerHost } from './host';
import { onJsonLines } from './json-lines';
import type { ContainerState, ObservedContainer, PublishedPorts } from '../model/container';
import { LABELS, LABEL_PREFIX, MANAGED_FILTER, ownership } from '../model/labels';
import type { DockerEvent } from './event';
import { StreamLiveness } from './stream-liveness';

export type { DockerEvent };

/** From `docker ps` (Ports) or `docker inspect` (NetworkSettings.Ports). */
export function portsFromList(entries: Dockerode.Port[] | undefined): PublishedPorts {
  const ports: PublishedPorts = {};
  for (const entry of entries ?? []) {
    if (!entry.PublicPort) continue;
    const key = `${entry.PrivatePort}/${entry.Type}`;
    // IPv4 first: a dual-stack daemon lists the same port twice.
    if (!ports[key] || ports[key].hostIp.includes(':'))
      ports[key] = { hostIp: entry.IP ?? '', hostPort: entry.PublicPort };
  }
  return ports;
}

export function portsFromInspect(
  settings: Record<string, Array<{ HostIp: string; HostPort: string }> | null> | undefined,
): PublishedPorts {
  const ports: PublishedPorts = {};
  for (const [key, bindings] of Object.entries(settings ?? {})) {
    const binding = bindings?.find((candidate) => !candidate.HostIp.includes(':')) ?? bindings?.[0];
    if (binding?.HostPort) ports[key] = { hostIp: binding.HostIp, hostPort: Number(binding.HostPort) };
  }
  return ports;
}

export interface InventoryOptions {
  host: DockerHost;
  /** Containers labelled with another installation are left out: they are not ours to see. */
  installation?: string;
  logger: Logger;
  metrics: Metrics;
  /** A container of this session changed. */
  onChange(session: string): void;
  /** A (re)list finished; these sessions had containers before or after it. */
  onRelisted(sessions: Set<string>): void;
  /** How often the event stream is checked for missed events (see StreamLiveness). */
  streamCheckIntervalMs?: number;
}

const EVENT_FILTERS = { type: ['container'], label: [MANAGED_FILTER] };

/** `docker ps` gives no exit code field; its status text does: "Exited (137) 5 seconds ago". */
export function exitCodeFromStatus(status: string | undefined): number | undefined {
  const match = /^Exited \((-?\d+)\)/.exec(status ?? '');
  return match ? Number(match[1]) : undefined;
}

/** `docker ps` status text: "Up 3 minutes (unhealthy)". */
export function healthFromStatus(status: string | undefined): ObservedContainer['health'] {
  const match = /\((healthy|unhealthy|health: starting)\)$/.exec(status ?? '');
  if (!match) return undefined;
  return match[1] === 'health: starting' ? 'starting' : (match[1] as 'healthy' | 'unhealthy');
}

export function fromListEntry(info: Dockerode.ContainerInfo): ObservedContainer {
  return {
    id: info.Id,
    name: (info.Names?.[0] ?? '').replace(/^\//, ''),
    labels: info.Labels ?? {},
    state: (info.State as ContainerState) ?? 'created',
    exitCode: exitCodeFromStatus(info.Status),
    ports: info.State === 'running' ? portsFromList(info.Ports) : undefined,
    health: healthFromStatus(info.Status),
  };
}

function ourLabels(attributes: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(attributes).filter(([key]) => key.startsWith(LABEL_PREFIX)));
}

/**
 * Applies one event to a container map. Pure apart from the map, so it can be unit-tested.
 * `create` only inserts: the controller records its own creates first, and a late create event
 * must not roll a started container back to "created". Events for unknown ids are ignored; a relist covers gaps.
 */
export function applyEvent(containers: Map<string, ObservedContainer>, event: DockerEvent): string | undefined {
  if (event.Type !== 'container' || !event.Action) return undefined;
  const id = event.Actor?.ID ?? event.id;
  if (!id) return undefined;
  const attributes = event.Actor?.Attributes ?? {};
  const at = event.timeNano ? Math.floor(event.timeNano / 1e6) : (event.time ?? 0) * 1000;
  const action = event.Action.startsWith('health_status') ? 'health_status' : event.Action.split(':')[0];
  const existing = containers.get(id);
  if (action === 'create') {
    if (!existing)
      containers.set(id, { id, name: attributes.name ?? '', labels: ourLabels(attributes), state: 'created' });
    return attributes[LABELS.session];
  }
  if (!existing) return undefined;
  switch (action) {
    case 'start':
    case 'restart':
    case 'unpause':
      Object.assign(existing, {
        state: 'running',
        startedAt: at,
        exitCode: undefined,
        oomKilled: false,
        health: undefined,
        ports: undefined,
      });
      break;
    case 'die':
      Object.assign(existing, {
        state: 'exited',
        finishedAt: at,
        exitCode: attributes.exitCode === undefined ? undefined : Number(attributes.exitCode),
        ports: undefined,
      });
      break;
    case 'oom':
      existing.oomKilled = true;
      existing.oomAt = at;
      break;
    case 'pause':
      existing.state = 'paused';
      break;
    case 'destroy':
      containers.delete(id);
      break;
    case 'rename':
      existing.name = attributes.name ?? existing.name;
      break;
    case 'health_status':
      existing.health = event.Action.split(': ')[1] as ObservedContainer['health'];
      break;
    default:
      return undefined;
  }
  return existing.labels[LABELS.session] ?? attributes[LABELS.session];
}

export class HostInventory {
  private containers = new Map<string, ObservedContainer>();
  /** Start events seen per container id (see eventMark). */
  private readonly startsSeen = new Map<string, number>();
  /** Session name -> container ids, so that a reconcile does not scan every container. */
  private bySession = new Map<string, Set<string>>();
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  private stream: NodeJS.ReadableStream | undefined;
  /** Seconds (with fraction) of the last event seen, to resume from. */
  private lastEventSeconds: number | undefined;
  synced = false;
  connected = false;
  private readonly liveness: StreamLiveness;

  constructor(private readonly options: InventoryOptions) {
    this.liveness = new StreamLiveness({
      host: options.host,
      logger: options.logger,
      filters: EVENT_FILTERS,
      intervalMs: options.streamCheckIntervalMs,
      onStall: (missed) => this.dropStalledStream(missed),
    });
  }

  /** The stream missed an event: drop it, so that the loop re-lists and reconnects with `since`. */
  private dropStalledStream(missed: DockerEvent): void {
    const { host, logger, metrics } = this.options;
    metrics.dockerEventStreamStalls.inc({ host: host.name });
    logger.warn(
      { host: host.name, missed: { action: missed.Action, containerId: missed.Actor?.ID ?? missed.id } },
      'docker event stream missed an event; reconnecting',
    );
    (this.stream as unknown as { destroy?: () => void } | undefined)?.destroy?.();
  }

  get host(): DockerHost {
    return this.options.host;
  }

  forSession(session: string): ObservedContainer[] {
    return [...(this.bySession.get(session) ?? [])]
      .map((id) => this.containers.get(id))
      .filter((container) => container !== undefined);
  }

  sessions(): Set<string> {
    return new Set(this.bySession.keys());
  }

  get size(): number {
    return this.containers.size;
  }

  private accepts(labels: Record<string, string>): boolean {
    return this.options.installation === undefined || ownership(labels, this.options.installation) !== 'foreign';
  }

  /**
   * The controller records the effect of its own calls at once; events then refine it. A container the
   * events already showed exiting keeps what they said: it may exit before the call that started it answers.
   */
  record(container: ObservedContainer): void {
    const known = this.containers.get(container.id);
    const exited = known && (known.state === 'exited' || known.state === 'dead');
    if (known) this.unindex(known);
    const merged = exited
      ? {
          ...container,
          state: known.state,
          startedAt: known.startedAt,
          finishedAt: known.finishedAt,
          exitCode: known.exitCode,
          oomKilled: known.oomKilled,
          oomAt: known.oomAt,
        }
      : container;
    this.containers.set(container.id, merged);
    this.index(merged);
  }

  /** How many start events the container has had: taken before a start, so that its answer does not overwrite later events. */
  eventMark(id: string): number {
    return this.startsSeen.get(id) ?? 0;
  }

  /**
   * Our start of the container succeeded: it runs, unless the start's own event has come since
   * `mark`, and with it whatever followed (a crash loop's container can exit before the start call
   * answers). A die before that event is the stop half of a restart, and does not count.
   */
  markStarted(id: string, mark: number, at: number): void {
    if (this.eventMark(id) !== mark) return;
    this.update(id, {
      state: 'running',
      startedAt: at,
      finishedAt: undefined,
      exitCode: undefined,
      oomKilled: false,
      health: undefined,
      ports: undefined,
    });
  }

  update(id: string, change: Partial<ObservedContainer>): void {
    const existing = this.containers.get(id);
    if (existing) Object.assign(existing, change);
  }

  forget(id: string): void {
    this.startsSeen.delete(id);
    const container = this.containers.get(id);
    if (!container) return;
    this.containers.delete(id);
    this.unindex(container);
  }

  private index(container: ObservedContainer): void {
    const session = container.labels[LABELS.session];
    if (!session) return;
    const ids = this.bySession.get(session) ?? new Set<string>();
    ids.add(container.id);
    this.bySession.set(session, ids);
  }

  private unindex(container: ObservedContainer): void {
    const session = container.labels[LABELS.session];
    const ids = session ? this.bySession.get(session) : undefined;
    ids?.delete(container.id);
    if (ids?.size === 0) this.bySession.delete(session);
  }

  /** One list call. Returns every session that had a container before or after. */
  async relist(): Promise<Set<string>> {
    const listed = await this.options.host.listManaged(MANAGED_FILTER);
    const touched = this.sessions();
    this.containers = new Map(
      listed.filter((info) => this.accepts(info.Labels ?? {})).map((info) => [info.Id, fromListEntry(info)]),
    );
    this.bySession = new Map();
    for (const container of this.containers.values()) this.index(container);
    for (const id of this.startsSeen.keys()) if (!this.containers.has(id)) this.startsSeen.delete(id);
    for (const session of this.sessions()) touched.add(session);
    this.synced = true;
    return touched;
  }

  start(): void {
    this.running ??= this.loop();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    this.liveness.stop();
    (this.stream as unknown as { destroy?: () => void } | undefined)?.destroy?.();
    await this.running;
  }

  private async loop(): Promise<void> {
    const { host, logger, metrics } = this.options;
    let attempt = 0;
    while (!this.abort.signal.aborted) {
      try {
        // Replay from a little before the list, so that nothing between list and watch is lost;
        // applying a replayed event twice in order is harmless.
        const since = this.lastEventSeconds ?? Date.now() / 1000 - 1;
        const sessions = await this.relist();
        this.options.onRelisted(sessions);
        await this.watch(since);
        attempt = 0;
      } catch (error) {
        if (this.abort.signal.aborted) break;
        logger.warn({ host: host.name, err: error }, 'docker event stream lost');
      }
      this.liveness.stop();
      // A stream that was up starts the back-off afresh: only failures in a row grow it.
      if (this.connected) attempt = 0;
      this.connected = false;
      metrics.dockerHostUp.set({ host: host.name }, 0);
      if (this.abort.signal.aborted) break;
      await sleep(backoffDelay(attempt++, { baseMs: 1_000, maxMs: 30_000 }), this.abort.signal);
    }
  }

  private async watch(since: number): Promise<void> {
    const { host, logger, metrics } = this.options;
    const stream = (await host.measure('events', () =>
      host.streams.getEvents({ since: since.toFixed(9), filters: EVENT_FILTERS } as object),
    )) as NodeJS.ReadableStream;
    this.stream = stream;
    this.connected = true;
    this.liveness.start();
    metrics.dockerHostUp.set({ host: host.name }, 1);
    logger.info({ host: host.name, containers: this.containers.size }, 'docker event stream connected');
    await new Promise<void>((resolve, reject) => {
      onJsonLines(stream, (line) => this.handle(line));
      stream.on('end', () => reject(new Error('event stream ended')));
      stream.on('close', () => reject(new Error('event stream closed')));
      stream.on('error', reject);
    });
  }

  private handle(line: string): void {
    let event: DockerEvent;
    try {
      event = JSON.parse(line) as DockerEvent;
    } catch {
      this.options.logger.warn({ host: this.options.host.name }, 'ignoring unparseable docker event');
      return;
    }
    this.liveness.noteDelivered(event);
    if (event.timeNano) this.lastEventSeconds = event.timeNano / 1e9;
    else if (event.time) this.lastEventSeconds = event.time;
    const id = event.Actor?.ID ?? event.id ?? '';
    if (!this.accepts(event.Actor?.Attributes ?? {})) return;
    const before = this.containers.get(id);
    // applyEvent changes the entry in place: what it was is read first.
    const wasRunning = before?.state === 'running';
    const session = applyEvent(this.containers, event);
    if (event.Action?.startsWith('health_status: ') && session) {
      const status = event.Action.slice('health_status: '.length);
      if (status === 'healthy' || status === 'unhealthy') this.options.metrics.healthTransitions.inc({ status });
    }
    const after = this.containers.get(id);
    if (!after) this.startsSeen.delete(id);
    else if (after.state === 'running' && !wasRunning) this.startsSeen.set(id, this.eventMark(id) + 1);
    if (!before && after) this.index(after);
    if (before && !after) this.unindex(before);
    if (session) this.options.onChange(session);
  }
}
