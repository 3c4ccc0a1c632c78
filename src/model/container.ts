/**
 * A container as the controller observes it: the domain's view, shared by the planner (which decides
 * from it) and the Docker adapter (which fills it from lists and events).
 */
export type ContainerState = 'created' | 'running' | 'paused' | 'restarting' | 'removing' | 'exited' | 'dead';

export interface ObservedContainer {
  id: string;
  name: string;
  labels: Record<string, string>;
  state: ContainerState;
  exitCode?: number;
  oomKilled?: boolean;
  /** When Docker last reported an OOM kill (ms epoch): it may come after the die event it explains. */
  oomAt?: number;
  /** ms epoch, from the daemon's event times. */
  startedAt?: number;
  finishedAt?: number;
  health?: 'starting' | 'healthy' | 'unhealthy';
  /**
   * Published ports of a running container, "8080/tcp" -> host side. Docker picks new ephemeral
   * ports at every start, so this is dropped at each start and die and read again by the controller.
   */
  ports?: PublishedPorts;
}

export type PublishedPorts = Record<string, { hostIp: string; hostPort: number }>;
