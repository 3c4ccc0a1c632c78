/**
 * What the controller's pacing policy remembers about one Docker host: which sessions it is creating
 * containers for (a crash loop's restart waits for them), and the turns handed out to crash-loop
 * restarts. Policy, not Docker: the Docker adapter only runs the calls.
 */
import { CreateActivity } from './create-activity';
import { RestartPacer } from './restart-pacer';

export class HostActivity {
  readonly creates = new CreateActivity();
  readonly crashRestarts = new RestartPacer();
}
