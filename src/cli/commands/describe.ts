/**
 * `sessionctl describe session NAME`: spec, status, every condition with reason, message and age,
 * and the recent events.
 */
import type { Command } from 'commander';
import { stringify } from 'yaml';
import type { Session, SessionEvent } from '../../client';
import { CommandError, sessionName, withClient } from '../context';
import { escapeControl } from '../../display/escape';
import { age, table } from '../format';
import { checkResource } from './get';
import { describeHosts, isHostResource } from './hosts';

function indent(text: string, by = '  '): string {
  return text
    .trimEnd()
    .split('\n')
    .map((line) => `${by}${line}`)
    .join('\n');
}

export function registerDescribe(program: Command): void {
  program
    .command('describe')
    .description('Show a session (spec, status, conditions, recent events) or a host in detail')
    .argument('<resource>', 'session or host')
    .argument('<names...>', 'names')
    .addHelpText('after', '\nExamples:\n  sessionctl describe session alice\n  sessionctl describe host dev-2411')
    .action(async (resource: string, references: string[]) => {
      if (isHostResource(resource)) return describeHosts(references);
      checkResource(resource);
      await withClient(async ({ client }) => {
        const missing: string[] = [];
        for (const name of references.map(sessionName)) {
          const session = await client.get(name);
          if (!session) {
            missing.push(name);
            continue;
          }
          const events = await client.events(name, 20);
          console.log(escapeControl(describeSession(session, events).join('\n')));
        }
        if (missing.length) throw new CommandError(missing.map((name) => `session "${name}" not found`).join('\n'));
      });
    });
}

/** The session in kubectl's describe layout: metadata, status, spec, conditions, events. */
function describeSession(session: Session, events: SessionEvent[]): string[] {
  const { metadata, status } = session;
  const labels = Object.entries(metadata.labels).map(([key, value]) => `${key}=${value}`);
  const lines = [
    `Name:          ${metadata.name}`,
    `Labels:        ${labels.length ? labels.join(', ') : '<none>'}`,
    `UID:           ${metadata.uid}`,
    `Generation:    ${metadata.generation} (observed: ${status.observedGeneration ?? '<none>'})`,
    `Created:       ${metadata.creationTimestamp} (${age(metadata.creationTimestamp)} ago)`,
  ];
  if (metadata.deletionTimestamp)
    lines.push(`Deleting:      since ${metadata.deletionTimestamp} (${age(metadata.deletionTimestamp)} ago)`);
  lines.push(
    `Phase:         ${status.phase ?? 'Pending'}`,
    `Host:          ${status.host ?? '<none>'}`,
    `Container:     ${status.containerId ?? '<none>'}`,
    `Restarts:      ${status.restartCount ?? 0}`,
  );
  if (status.lastExitCode !== undefined || status.lastExitReason)
    lines.push(`Last exit:     ${status.lastExitCode ?? '?'} (${status.lastExitReason ?? 'unknown'})`);
  const endpoints = Object.entries(status.endpoints ?? {});
  if (endpoints.length > 0)
    lines.push(`Endpoints:     ${endpoints.map(([port, address]) => `${port}=${address}`).join(', ')}`);
  lines.push('Spec:', indent(stringify(session.spec)));
  lines.push(...conditionAndEventLines(session, events));
  return lines;
}

function conditionAndEventLines({ status }: Session, events: SessionEvent[]): string[] {
  const lines: string[] = [];
  const conditions = status.conditions ?? [];
  lines.push(
    'Conditions:',
    conditions.length
      ? indent(
          table(
            ['TYPE', 'STATUS', 'REASON', 'AGE', 'MESSAGE'],
            conditions.map((c) => [c.type, c.status, c.reason, age(c.lastTransitionTime), c.message]),
          ),
        )
      : '  <none>',
  );
  lines.push(
    'Events:',
    events.length
      ? indent(
          table(
            ['TYPE', 'REASON', 'AGE', 'MESSAGE'],
            events.map((event) => [
              event.type,
              event.reason,
              event.count > 1
                ? `${age(event.lastSeen)} (x${event.count} over ${age(event.firstSeen)})`
                : age(event.lastSeen),
              event.message,
            ]),
          ),
        )
      : '  <none>',
  );
  return lines;
}
